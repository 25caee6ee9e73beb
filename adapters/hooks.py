"""Activation capture and the shared base of every method's network.

:class:`HookedNet` wraps an architecture as ``self.net`` and records, with forward
hooks, the outputs of the modules its spatial loss needs (and the input of the
classifier head, for :meth:`features`). Hooks are small callable objects rather
than closures so that ``copy.deepcopy`` of a model (EMA, SWA) gives a copy whose
hooks write into the copy's own store.

Module names are ``named_modules()`` names of the wrapped architecture
(``"layer2.0"``); placements and areas are keyed by names valid on the
:class:`HookedNet` itself (``"net.layer2.0"``) because ``export_cortex`` hooks it.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import torch
from torch import nn

from cortexsim.capture import OutputStore, evaluating
from cortexsim.errors import LayerNotFoundError, LayoutError
from cortexsim.layout import Placement, place
from cortexsim.modules import resolve_module

from .archs import input_channels
from .base import AdapterError, TopographicNet

PREFIX = "net."

F = TypeVar("F", bound=Callable[..., torch.Tensor])


def float32_loss(fn: F) -> F:
    """Run a spatial loss in float32 even inside a bf16 autocast region (the trainer's step).

    Correlations and cosines of hundreds of units lose most of their digits in bf16.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch.autocast("cuda", enabled=False), torch.autocast("cpu", enabled=False):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def check_lam(lam: float, name: str = "lam") -> float:
    """λ / α must be a finite number ≥ 0."""
    try:
        value = float(lam)
    except (TypeError, ValueError):
        raise AdapterError(f"{name} must be a number ≥ 0; got {lam!r}.") from None
    if not math.isfinite(value) or value < 0:
        raise AdapterError(f"{name} must be a finite number ≥ 0 (0 switches the spatial term off); got {lam!r}.")
    return value


def check_layout(layout: str | None, allowed: Sequence[str], method: str) -> str:
    """``layout`` (None → the method's first layout) must be one the method can train with."""
    if layout is None:
        return allowed[0]
    if layout not in allowed:
        raise AdapterError(
            f"layout {layout!r} is incompatible with method {method!r}; it trains with {', '.join(map(repr, allowed))}."
        )
    return layout


def resolve_layers(
    net: nn.Module, layers: Iterable[str] | None, default: Sequence[str], kind: type | tuple[type, ...] | None = None
) -> list[str]:
    """Check module names (optionally prefixed ``net.``) exist in ``net`` and are of ``kind``.

    Returns the names relative to ``net``. Unknown names raise :class:`AdapterError`
    with the closest valid names.
    """
    names = list(default if layers is None else layers)
    if not names:
        raise AdapterError("layers is empty; give at least one module name, e.g. ['layer4.1'].")
    out = []
    for name in names:
        try:  # "net.<name>" (a name on the HookedNet) and "<name>" both find the module of net
            rel, module = resolve_module(net, name, prefixes=(PREFIX,))
        except LayerNotFoundError as exc:
            raise AdapterError(f"unknown layer {name!r}: {exc}") from None
        if kind is not None and not isinstance(module, kind):
            want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise AdapterError(f"layer {name!r} is a {type(module).__name__}; this method needs a {want} layer.")
        out.append(rel)
    if len(set(out)) != len(out):
        raise AdapterError(f"layers contains duplicates: {names}.")
    return out


def place_layers(
    shapes: dict[str, tuple[int, ...]], layout: str, params: dict[str, dict] | None = None
) -> dict[str, Placement]:
    """Place every layer (name -> per-stimulus output shape) with ``layout``; keys become ``net.<name>``.

    Layout failures (a dense layer given a retinotopic layout, a Reset grid that is
    not m×m, ...) raise :class:`AdapterError`.
    """
    out = {}
    for name, shape in shapes.items():
        try:
            out[PREFIX + name] = place(layout, shape, **(params or {}).get(name, {}))
        except LayoutError as exc:
            raise AdapterError(f"layout {layout!r} cannot place layer {name!r} (output shape {shape}): {exc}") from exc
    return out


def areas_for(defaults: dict[str, str], names: Sequence[str]) -> dict[str, str]:
    """Areas (-> ``net.<module>``) among the regularised ``names``; each name is its own area otherwise."""
    chosen = {a: m for a, m in defaults.items() if m in names}
    return {a: PREFIX + m for a, m in (chosen or {n: n for n in names}).items()}


class HookedNet(TopographicNet):
    """A :class:`TopographicNet` whose spatial loss reads hooked activations.

    Parameters
    ----------
    net : nn.Module
        The architecture (stored as ``self.net``).
    capture : sequence of str
        Modules of ``net`` whose outputs are kept after each forward (``self.acts[name]``).
    head : str, optional
        Classifier module whose *input* is the :meth:`features` representation.
    """

    def __init__(self, net: nn.Module, capture: Sequence[str], head: str | None = None) -> None:
        super().__init__()
        self.net = net
        self.acts: dict[str, torch.Tensor] = {}
        self.capture = list(capture)
        for name in self.capture:
            net.get_submodule(name).register_forward_hook(OutputStore(self.acts, name))
        self.head = head
        if head is not None:
            net.get_submodule(head).register_forward_hook(OutputStore(self.acts, "__features__", use_input=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H, W) -> (N, n_outputs)."""
        return self.net(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Input of the classifier head: (N, D) (e.g. ResNet-18's 512-d pooled features)."""
        if self.head is None:
            return self.forward(x)
        self.forward(x)
        return self.acts["__features__"].flatten(1)

    def activation(self, name: str) -> torch.Tensor:
        """Output of module ``name`` in the last forward pass."""
        try:
            return self.acts[name]
        except KeyError:
            raise RuntimeError(f"no activation of {name!r} yet; call the model on a batch before spatial_loss().") from None

    def probe_shapes(self, image_size: int | tuple[int, int], in_channels: int | None = None) -> dict[str, tuple[int, ...]]:
        """Per-stimulus output shape of every captured module for one (1, C, H, W) zero image.

        image_size : S (square) or (H, W) in px; in_channels : C (default: the network's first conv's).
        Probed in eval mode without autograd (no BN statistics update, no dropout draw).
        """
        h, w = (image_size, image_size) if isinstance(image_size, int) else (int(image_size[0]), int(image_size[1]))
        c = input_channels(self.net) if in_channels is None else int(in_channels)
        with evaluating(self):
            self.forward(torch.zeros(1, c, h, w, device=self.zero().device))
        shapes = {name: tuple(self.acts[name].shape[1:]) for name in self.capture}
        self.acts.clear()
        return shapes

    def zero(self) -> torch.Tensor:
        """0-dim float zero on the model's device."""
        return next(self.parameters()).new_zeros(())
