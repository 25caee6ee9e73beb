"""Conformance check of a training method, in the manner of scikit-learn's ``check_estimator``.

>>> from cortexsim.adapters.testing import check_method
>>> check_method("channel")                      # doctest: +SKIP
{'arch': 'resnet18', 'n_placements': 5, 'spatial_loss': 0.26, 'loss_before': 1.13, 'loss_after': 0.98, ...}

Every registered method passes it in the test suite (``tests/test_check_method.py``), so a new
method gets all checks by registering itself. A failed check raises :class:`MethodCheckError`
naming the check and what was found.

Checks (on a tiny network: :data:`TINY` configurations, 16-px images, a few steps):

1. **shapes** — ``forward`` gives (B, num_classes), ``features`` a (B, D) tensor.
2. **placements** — every placed layer exists, its placement has one position per unit of the
   layer's output (units = C·H·W, or C for channel-level placements), positions are finite, not
   all at one point, inside ``[0, size_mm]`` where the placement gives a sheet size; every area
   names a module of the network.
3. **gradient** — the spatial loss is a finite 0-dim tensor; when it is not a constant 0 its
   gradient reaches the parameters, finite and not all zero.
4. **training** — a few Adam steps on one batch lower task + spatial loss (measured with the
   same dropout draw before and after).
5. **resume** — a network rebuilt from the same build arguments and loaded with the state dict
   (what a checkpoint holds) has identical state, outputs and spatial loss; with ``trainer=True``
   also a :class:`~cortexsim.adapters.trainer.Trainer` run resumed from its checkpoint ends in the
   state of an uninterrupted run.
6. **export** — ``export_cortex().record(...)`` gives a Sheet whose unit positions are the placements'.
"""
from __future__ import annotations

import io
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cortexsim.capture import capture
from cortexsim.errors import CortexsimError
from cortexsim.seeding import seeded

from .base import MethodSpec, TopographicNet, get_method

__all__ = ["MethodCheckError", "TINY", "check_method"]

#: Smallest configuration per method (arch, build kwargs) that still exercises its spatial term.
TINY: dict[str, tuple[str, dict[str, Any]]] = {
    "baseline": ("th_mnist", {"layout": "grid2d"}),
    "channel": ("resnet18", {}),
    "ws": ("th_mnist", {"grid_side": 4}),
    "as": ("th_mnist", {"grid_side": 4}),
    "tdann": ("resnet18", {"n_table": 8, "layers": ["layer3.1", "layer4.1"]}),
    "reset": ("resnet20", {"n": 1, "m": 4, "autoencoder": True}),
    "topoloss": ("th_mnist", {}),
}


class MethodCheckError(CortexsimError, AssertionError):
    """A method failed one of :func:`check_method`'s checks (the message names it)."""


def _fail(check: str, method: str, what: str) -> None:
    raise MethodCheckError(f"check_method[{method}] {check}: {what}")


def check_method(
    spec_or_name: MethodSpec | str,
    *,
    arch: str | None = None,
    build_kwargs: dict[str, Any] | None = None,
    num_classes: int = 3,
    image_size: int = 16,
    batch_size: int = 4,
    steps: int = 5,
    lr: float = 1e-3,
    trainer: bool = False,
) -> dict[str, Any]:
    """Run the conformance checks of the module docstring on one method; raise on the first failure.

    Parameters
    ----------
    spec_or_name : MethodSpec or registered method name
    arch, build_kwargs : optional
        The network to check (default :data:`TINY`, else the spec's default / first arch).
    num_classes, image_size, batch_size : int
        Output size, image side in px and batch of the random test images (B, 3, S, S) in [0, 1).
    steps : int
        Adam steps (learning rate ``lr``) of the training check.
    trainer : bool
        Also train 3 steps through the Trainer (offline ``digits``), interrupt at step 2, resume and
        compare with an uninterrupted run (slower: several builds and runs).

    Returns
    -------
    dict
        What was measured: ``arch``, ``n_placements``, ``spatial_loss``, ``loss_before``, ``loss_after``.
    """
    spec = get_method(spec_or_name) if isinstance(spec_or_name, str) else spec_or_name
    name = spec.name
    # not in TINY: the spec's own default arch and build options (same checks, a larger network)
    tiny_arch, tiny_kw = TINY.get(name, (None, dict(getattr(spec, "build_defaults", {}))))
    arch = arch or tiny_arch or spec.defaults.get("arch") or spec.archs[0]
    kw = dict(tiny_kw if build_kwargs is None else build_kwargs)
    args = dict(seed=0, image_size=image_size, **kw)
    net = spec.build(arch, num_classes, **args)
    if not isinstance(net, TopographicNet):
        _fail("build", name, f"build returned a {type(net).__name__}, not a TopographicNet.")
    c = _channels(net)
    x = torch.rand(batch_size, c, image_size, image_size, generator=torch.Generator().manual_seed(0))
    target = torch.arange(batch_size) % num_classes

    _check_shapes_and_placements(net, x, num_classes, name)
    spatial = _check_gradient(net, x, name)
    before, after = _check_training(net, x, target, steps, lr, name)
    _check_rebuild(spec, arch, num_classes, args, net, x, name)
    _check_export(net, x, name)
    if trainer:
        _check_trainer_resume(name, arch, kw, image_size)
    return {"arch": arch, "n_placements": len(net.placements), "spatial_loss": spatial,
            "loss_before": before, "loss_after": after}


def _channels(net: TopographicNet) -> int:
    from .archs import input_channels

    return input_channels(net, 3)


def _check_shapes_and_placements(net: TopographicNet, x: torch.Tensor, k: int, name: str) -> None:
    modules = dict(net.named_modules())
    missing = [m for m in [*net.placements, *net.areas.values()] if m not in modules]
    if missing:
        _fail("placements", name, f"placements / areas name modules the network does not have: {missing}.")
    net.train()
    with capture(net, list(net.placements)) as acts:
        out = net(x)
    if tuple(out.shape) != (len(x), k):
        _fail("shapes", name, f"forward gave {tuple(out.shape)}; expected (B, num_classes) = {(len(x), k)}.")
    feats = net.features(x)
    if feats.ndim != 2 or feats.shape[0] != len(x):
        _fail("shapes", name, f"features gave {tuple(feats.shape)}; expected (B, D) with B = {len(x)}.")
    for module, p in net.placements.items():
        a = acts[module]
        n = math.prod(a.shape[1:]) if p.level == "unit" else a.shape[1]
        pos = np.asarray(p.positions)
        if p.n_units != n or pos.shape[0] != n or pos.ndim != 2 or pos.shape[1] not in (2, 3):
            _fail("placements", name, f"{module!r}: {pos.shape} positions / {p.n_units} units for an output of "
                                      f"{tuple(a.shape[1:])} ({n} {p.level}s).")
        if not np.isfinite(pos).all() or (n > 1 and np.ptp(pos, axis=0).max() == 0):
            _fail("placements", name, f"{module!r}: positions must be finite and not all at one point.")
        size = p.params.get("size_mm")
        if isinstance(size, (int, float)) and ((pos < -1e-6).any() or (pos > size + 1e-6).any()):
            _fail("placements", name, f"{module!r}: positions outside the {size} mm sheet "
                                      f"(range {pos.min():.3g} … {pos.max():.3g}).")


def _check_gradient(net: TopographicNet, x: torch.Tensor, name: str) -> float:
    net.zero_grad(set_to_none=True)
    net(x)
    total, per_layer = net.spatial_loss()
    if total.ndim != 0 or not torch.isfinite(total):
        _fail("gradient", name, f"spatial_loss() total must be a finite 0-dim tensor; got {total!r}.")
    if any(v.ndim != 0 for v in per_layer.values()):
        _fail("gradient", name, "per-layer spatial losses must be 0-dim tensors.")
    if not total.requires_grad:
        if total.item() != 0 or per_layer:
            _fail("gradient", name, "a spatial loss without a graph must be the constant 0 with no per-layer terms.")
        return 0.0
    total.backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    if not grads or not all(torch.isfinite(g).all() for g in grads):
        _fail("gradient", name, "the spatial loss's gradient does not reach the parameters or is not finite.")
    if not any(g.abs().sum() > 0 for g in grads):
        _fail("gradient", name, "the spatial loss's gradient is zero everywhere.")
    net.zero_grad(set_to_none=True)
    return float(total.detach())


def _loss(net: TopographicNet, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return net.task_loss(net(x), target) + net.spatial_loss()[0]


def _check_training(net: TopographicNet, x: torch.Tensor, target: torch.Tensor, steps: int, lr: float,
                    name: str) -> tuple[float, float]:
    # Train mode with the same dropout draw before and after (seeded), so only the weights differ.
    def measure() -> float:
        with torch.no_grad(), seeded(0):
            return float(_loss(net, x, target))

    before = measure()
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=lr)
    with seeded(1):
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            _loss(net, x, target).backward()
            opt.step()
    after = measure()
    if not after < before:
        _fail("training", name, f"{steps} Adam steps (lr {lr}) on one batch did not lower the loss: "
                                f"{before:.6g} → {after:.6g}.")
    net.zero_grad(set_to_none=True)
    return before, after


def _check_rebuild(spec: MethodSpec, arch: str, k: int, args: dict[str, Any], net: TopographicNet,
                   x: torch.Tensor, name: str) -> None:
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    buf.seek(0)
    twin = spec.build(arch, k, **args)
    twin.load_state_dict(torch.load(buf, weights_only=True))
    for (key, a), b in zip(net.state_dict().items(), twin.state_dict().values()):
        if not torch.equal(a, b):
            _fail("resume", name, f"state {key!r} differs after rebuilding and loading the state dict.")
    if set(net.placements) != set(twin.placements) or any(
            not np.array_equal(p.positions, twin.placements[m].positions) for m, p in net.placements.items()):
        _fail("resume", name, "a rebuilt network has different placements (positions must be saved or rebuilt).")
    net.eval()
    twin.eval()
    with torch.no_grad(), seeded(2):
        out_a, loss_a = net(x), net.spatial_loss()[0]
    with torch.no_grad(), seeded(2):
        out_b, loss_b = twin(x), twin.spatial_loss()[0]
    net.train()
    if not (torch.equal(out_a, out_b) and torch.equal(loss_a, loss_b)):
        _fail("resume", name, "a rebuilt network loaded with the state dict gives other outputs / spatial loss.")


def _check_export(net: TopographicNet, x: torch.Tensor, name: str) -> None:
    if not net.placements:
        return  # nothing placed (a baseline without layout): no sheet to export
    ds = net.export_cortex().record(x, batch_size=len(x))
    for area, module in net.areas.items():
        if module not in net.placements:
            continue
        sub = ds.cortex.area(area)
        pos = net.placements[module].positions
        got = np.c_[sub.x_mm.values, sub.y_mm.values]
        if got.shape[0] != pos.shape[0] or not np.allclose(got, pos[:, :2], rtol=1e-6, atol=1e-9):
            _fail("export", name, f"area {area!r}: the Sheet's unit positions are not the trained placements.")
    if ds.responses.shape[0] != len(x):
        _fail("export", name, f"the Sheet holds {ds.responses.shape[0]} stimuli; {len(x)} were recorded.")


def _check_trainer_resume(name: str, arch: str, kw: dict[str, Any], image_size: int) -> None:
    from .trainer import Trainer

    kw = dict(kw)
    opts = dict(method=name, arch=arch, data="digits", steps=3, batch_size=4, log_every=1, device="cpu",
                progress=False, image_size=image_size, layers=kw.pop("layers", None), layout=kw.pop("layout", None),
                method_kwargs=kw)
    with tempfile.TemporaryDirectory() as tmp:
        full = Trainer(out=Path(tmp) / "full", **opts)
        full.fit()
        Trainer(out=Path(tmp) / "cut", checkpoint_every=2, **opts).fit(stop_at=3)  # checkpoint at 2
        resumed = Trainer.resume(Path(tmp) / "cut")
        resumed.fit()
        for (key, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
            if not torch.equal(a, b):
                _fail("resume", name, f"a Trainer run resumed from its step-2 checkpoint ends with other {key!r} "
                                      f"than an uninterrupted run.")
