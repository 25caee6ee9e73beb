"""TDANN's unit positions: neighbourhood windows, their sampling, and the swap pre-optimisation hook.

* :func:`neighbourhood_windows` / :func:`window_members` / :func:`neighbourhood_table`: the
  neighbourhoods the spatial loss samples (squares as the reference, or discs);
* :func:`optimize_positions`: swap units inside neighbourhoods so nearby units correlate
  (``TDANNNet.optimize_positions`` calls it);
* :func:`before_training`: TDANN's training hook (``MethodSpec.before_training``): with
  ``swapopt=N`` it runs :func:`optimize_positions` before the first step.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import nn

from .base import AdapterError, TrainContext
from .hooks import PREFIX

#: Neighbourhood shapes: squares (the reference's sampling) or discs.
SHAPES = ("square", "disc")

@dataclasses.dataclass(frozen=True)
class Windows:
    """Cortical neighbourhood windows of one layer.

    Attributes
    ----------
    centres : (R, 2) mm, the kept windows' centres
    radius : half the side of a square / radius of a disc, mm
    k : units per neighbourhood (a uniform random subset of each window, fixed per window)
    shape : "square" | "disc"
    seed : seed of the subsets
    """

    centres: np.ndarray
    radius: float
    k: int
    shape: str
    seed: int

    def __len__(self) -> int:
        return len(self.centres)


def neighbourhood_windows(
    positions: np.ndarray,
    width_mm: float,
    max_units: int = 500,
    n_rows: int = 20_000,
    *,
    seed: int = 0,
    shape: str = "square",
    min_units: int = 25,
    keep_fraction: float = 0.95,
) -> Windows:
    """Draw neighbourhood windows as TDANN does and fix their size K.

    Parameters
    ----------
    positions : (U, 2) mm
    width_mm : side of a square / diameter of a disc
    max_units : K cap (TDANN: 500)
    n_rows : windows drawn (TDANN: 20,000); R ≤ n_rows remain
    seed : seed of the windows and of the subsets
    shape : ``"square"`` (TDANN): squares whose centres are uniform over the sheet's extent
        shrunk by width/2 on every side, edges inclusive; ``"disc"``: discs of diameter
        ``width_mm`` around randomly chosen units (cortexsim's earlier scheme)
    min_units : lower bound of K (TDANN: 25)
    keep_fraction : K is the (1 − keep_fraction) quantile of the window counts (TDANN: 0.95;
        ``scipy.stats.scoreatpercentile``, truncated), raised to ``min_units`` and capped at
        ``max_units``; windows with fewer than K units are dropped.
    """
    positions = np.asarray(positions, dtype=float)
    n = len(positions)
    if width_mm <= 0:
        raise AdapterError(f"neighbourhood width must be > 0 mm; got {width_mm}.")
    if shape not in SHAPES:
        raise AdapterError(f"neighbourhood shape must be one of {SHAPES}; got {shape!r}.")
    rng = np.random.default_rng(seed)
    radius = width_mm / 2
    if shape == "square":
        lo, hi = positions.min(axis=0) + radius, positions.max(axis=0) - radius
        centres = np.stack([rng.uniform(lo[i], hi[i], size=n_rows) for i in range(2)], axis=1)
    else:
        centres = positions[rng.choice(n, size=min(n_rows, n), replace=False)]
    p = np.inf if shape == "square" else 2.0  # Chebyshev distance ≤ width/2: inside the square
    count = np.asarray(cKDTree(positions).query_ball_point(centres, radius, p=p, return_length=True))
    k = int(min(max_units, max(int(np.percentile(count, 100 * (1 - keep_fraction))), min_units)))
    if count.max(initial=0) < k or k < 3:
        raise AdapterError(
            f"neighbourhoods of {width_mm:.3g} mm hold only {count.max(initial=0)} units at most (need ≥ {max(k, 3)}; "
            f"TDANN keeps windows of ≥ {min_units}); increase neighbourhood_mm or the layer's unit density "
            f"(a larger image_size or a smaller sheet_mm), or lower min_neighbourhood."
        )
    return Windows(centres[count >= k], float(radius), k, shape, int(seed))


_M32 = 0xFFFFFFFF


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    # (x · c) mod 2³² for x < 2³² in int64 without overflow: split x into 16-bit halves
    return ((x & 0xFFFF) * c + ((((x >> 16) * c) & 0xFFFF) << 16)) & _M32


def _subset_keys(rows: torch.Tensor, n_units: int, seed: int) -> torch.Tensor:
    """(S, U) int64 pseudo-random keys in [0, 2³²) of every unit for each window row: a fixed
    function of (seed, row, unit) — an integer hash (Wellons' lowbias32) — so a window's subset
    is the same each time it is drawn, on any device, and no (R, K) table has to be stored."""
    u = torch.arange(n_units, device=rows.device, dtype=torch.int64)
    x = (_mul32(rows.to(torch.int64)[:, None] & _M32, 0x9E3779B1) ^ _mul32(u[None, :], 0x85EBCA77)
         ^ _mul32(torch.full_like(u[:1], seed & _M32), 0xC2B2AE3D))
    for c, shift in ((0x7FEB352D, 15), (0x846CA68B, 16)):
        x = _mul32(x ^ (x >> 16), c)
        x = x ^ (x >> shift)
    return x


def window_members(positions: torch.Tensor, windows: Windows, centres: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Unit indices (S, K) of the neighbourhoods ``rows`` (S,) of ``windows``, each row sorted.

    A neighbourhood is a uniform random K-subset of the units inside its window (TDANN draws one
    such subset per window when it builds its table): the K units of smallest hashed key
    (:func:`_subset_keys`) among those inside. Vectorised over the rows and units, on the
    positions' device, without a host sync.

    positions : (U, 2) mm; centres : (R, 2) the windows' centres on the same device; rows : (S,) long
    """
    c = centres[rows]  # (S, 2)
    diff = positions[None, :, :] - c[:, None, :]
    dist = diff.abs().amax(-1) if windows.shape == "square" else diff.square().sum(-1).sqrt()
    keys = _subset_keys(rows, len(positions), windows.seed)
    keys = torch.where(dist <= windows.radius, keys, keys.new_full((), 1 << 33))  # outside: after every member
    pick = torch.topk(keys, windows.k, dim=1, largest=False, sorted=False).indices
    return pick.sort(dim=1).values


def neighbourhood_table(positions: np.ndarray, width_mm: float, max_units: int = 500, n_rows: int = 20_000,
                        **kwargs: Any) -> np.ndarray:
    """All neighbourhoods of :func:`neighbourhood_windows` as a table (R, K) int64, rows sorted.

    The same neighbourhoods a :class:`TDANNNet` draws from (it computes them on the fly instead of
    storing the table); ``kwargs`` as :func:`neighbourhood_windows`.
    """
    win = neighbourhood_windows(positions, width_mm, max_units, n_rows, **kwargs)
    pos, centres = torch.as_tensor(np.asarray(positions, dtype=np.float32)), torch.as_tensor(win.centres, dtype=torch.float32)
    rows = torch.arange(len(win))
    return torch.cat([window_members(pos, win, centres, rows[s : s + 256]) for s in range(0, len(win), 256)]).numpy()




@torch.no_grad()
def optimize_positions(
    net: Any,
    images: torch.Tensor,
    *,
    reference: nn.Module | None = None,
    iterations: int = 200,
    neighbourhood: int = 32,
    batch: int | None = None,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = False,
    algorithm: str | None = None,
) -> dict[str, dict[str, float]]:
    """TDANN position pre-optimisation of ``net`` (a :class:`~cortexsim.adapters.tdann.TDANNNet`): swap units inside neighbourhoods so nearby units correlate.

    TDANN initialises unit positions from the responses of a network trained
    without the spatial loss, then trains with those positions fixed. Each
    layer's units are permuted over its own retinotopic slots (a unit only moves within a
    local neighbourhood, so retinotopy is kept); the neighbourhood windows are redrawn
    on the new positions, and :attr:`placements` are updated so ``export_cortex`` records
    the new positions. Call it before training (the :class:`Trainer` does so
    with ``swapopt=N``).

    ``algorithm="cortexsim"`` (the default) is :func:`cortexsim.swapopt.swap_optimize`
    (``iterations`` rounds of ``batch`` groups of ``neighbourhood`` nearest units, each
    applying its best swap of Σ C·D). ``"tdann"`` is TDANN's
    :func:`cortexsim.swapopt.swap_optimize_windows`: ``iterations`` squares of the layer's
    neighbourhood width, ``swap_steps`` (500) random pair swaps in each, kept when they lower
    the two units' SL_Rel; TDANN's configs visit 100,000 squares per layer (5·10⁷ sequential
    steps — hours per IT layer; see the module docstring).

    Parameters
    ----------
    images : (N, C, H, W) float tensor
        Stimuli whose responses define the correlations (e.g. a few hundred
        training images).
    reference : nn.Module, optional
        Network giving the responses, with the same regularised module names
        (``"layer2.0"`` or ``"net.layer2.0"``), e.g. a trained baseline ResNet-18.
        Default: this network as it is now.
    iterations : squares visited per layer ("tdann") or rounds ("cortexsim")
    neighbourhood, batch, seed : see :func:`~cortexsim.swapopt.swap_optimize` /
        :func:`~cortexsim.swapopt.swap_optimize_windows` (``batch`` default 64 / 256)
    algorithm : "tdann" | "cortexsim"; None: the model's ``swap_algorithm``
    batch_size : images per forward pass
    progress : tqdm bars

    Returns
    -------
    dict layer -> ``{"loss_before", "loss_after"}``: this method's spatial loss
    (SL_Rel / SL_Abs) of the reference responses over (up to) the first 128
    neighbourhoods, at the old and the new positions.
    """
    from cortexsim.swapopt import swap_optimize, swap_optimize_windows

    from .tdann import SWAP_ALGORITHMS, spatial_correlation_loss  # here: tdann imports this module

    algorithm = net.swap_algorithm if algorithm is None else algorithm
    if algorithm not in SWAP_ALGORITHMS:
        raise AdapterError(f"swap algorithm must be one of {SWAP_ALGORITHMS}; got {algorithm!r}.")
    if images.ndim != 4 or not torch.is_floating_point(images):
        raise AdapterError(f"images must be a float (N, C, H, W) tensor; got {tuple(images.shape)} {images.dtype}.")
    if len(images) < 3:
        raise AdapterError(f"need at least 3 images to correlate responses; got {len(images)}.")
    responses = _layer_responses(reference if reference is not None else net, net.layer_names, images, batch_size)
    report = {}
    for i, name in enumerate(net.layer_names):
        pos_t = getattr(net, f"pos_{i}")
        resp = responses[name].to(pos_t.device)
        if resp.shape[1] != len(pos_t):
            raise AdapterError(f"reference layer {name!r} has {resp.shape[1]} units; this network has {len(pos_t)}.")
        first = torch.arange(min(len(net.windows[name]), 128), device=pos_t.device)
        before = spatial_correlation_loss(resp, pos_t, net.neighbourhoods(name, first), getattr(net, f"pairs_{i}"),
                                          net.variant)
        report[name] = {"loss_before": float(before)}
        if algorithm == "tdann":
            perm = swap_optimize_windows(resp, pos_t.cpu().numpy(), net.window_params[name]["width_mm"],
                                         windows=iterations, steps_per_window=net.swap_steps,
                                         batch=batch or 256, seed=seed + i, device=pos_t.device, progress=progress)
        else:
            perm = swap_optimize(resp, pos_t.cpu().numpy(), neighbourhood=neighbourhood, iterations=iterations,
                                 batch=batch or 64, seed=seed + i, device=pos_t.device, progress=progress)
        pos_t.copy_(pos_t[torch.as_tensor(perm, device=pos_t.device)])  # indexing reads into a new tensor first
    net._sync_placements()  # new placements; windows redrawn on the new positions (as TDANN)
    for i, name in enumerate(net.layer_names):
        pos_t = getattr(net, f"pos_{i}")
        first = torch.arange(min(len(net.windows[name]), 128), device=pos_t.device)
        after = spatial_correlation_loss(responses[name].to(pos_t.device), pos_t, net.neighbourhoods(name, first),
                                         getattr(net, f"pairs_{i}"), net.variant)
        report[name]["loss_after"] = float(after)
    return report


def _layer_responses(model: nn.Module, names: list[str], images: torch.Tensor, batch_size: int) -> dict[str, torch.Tensor]:
    """Flattened outputs (N, U) float32 of ``model``'s modules ``names`` (or ``net.<name>``) on ``images``."""
    modules = {}
    for name in names:
        for candidate in (name, PREFIX + name):
            try:
                modules[name] = model.get_submodule(candidate)
                break
            except AttributeError:
                continue
        else:
            raise AdapterError(f"reference network has no module {name!r} (nor {PREFIX + name!r}).")
    out: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    hooks = [m.register_forward_hook(lambda _m, _a, y, n=n: out[n].append(y.detach().flatten(1).float().cpu()))
             for n, m in modules.items()]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()  # BN running statistics, no dropout: probing leaves no trace
    try:
        for start in range(0, len(images), batch_size):
            model(images[start : start + batch_size].to(device))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return {n: torch.cat(v) for n, v in out.items()}


def before_training(ctx: TrainContext) -> dict[str, Any] | None:
    """TDANN's hook: with ``swapopt=N > 0``, swap-optimise the positions before the first step.

    The responses come from the first ``swapopt_images`` training images (seeded augmentation; the first
    view under SimCLR) through ``swapopt_reference``'s trained net (None: this net as initialised).
    ``N`` is what the net's ``swap_algorithm`` counts: rounds ("cortexsim") or squares per layer ("tdann").
    Returns ``{"swapopt_report": {layer: {"loss_before", "loss_after"}}}`` for ``config.json["resolved"]``.
    """
    cfg = ctx.config
    if not cfg.swapopt:
        return None
    from .run_folder import load_trained

    n = min(cfg.swapopt_images, len(ctx.dataset))
    xs = [ctx.dataset[i][0] for i in range(n)]  # seeded augmentation; restores the global RNG
    images = torch.stack([x[0] if ctx.task == "simclr" else x for x in xs])
    reference = None if cfg.swapopt_reference is None else load_trained(cfg.swapopt_reference, ctx.device)
    report = ctx.net.optimize_positions(images, reference=reference, iterations=cfg.swapopt, seed=cfg.seed,
                                        progress=ctx.progress)
    return {"swapopt_report": report}

