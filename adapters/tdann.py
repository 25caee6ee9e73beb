"""``tdann``: the TDANN spatial correlation loss (Margalit et al. 2024; Lee et al. 2020).

Every unit of the regularised feature maps gets a retinotopic position
(:func:`cortexsim.layout.retinotopic`). At each step, per layer, a few cortical
neighbourhoods are drawn; inside one neighbourhood of K units,

* r_ij = Pearson correlation over the batch of the responses of units i and j,
* t_ij = 1 / (d_ij + 1), d_ij their cortical distance in mm,
* **SL_Rel** = (1 − Pearson_{i<j}(r_ij, t_ij)) / 2   (default, "rel"; in [0, 1]),
* **SL_Abs** = mean_{i<j} |r_ij − t_ij|                ("abs", TDANN's 2020 loss).

The loss is L = L_task + Σ_l α_l · SL_l with α = 0.25 for every residual-block
output of ResNet-18 (``layer1.0`` … ``layer4.1``). The task loss is the trainer's
(supervised cross-entropy, or SimCLR on :meth:`features`).

Neighbourhoods
--------------
Built once, on the CPU at build time, as a table of ``n_table`` rows × K unit
indices (a registered buffer, so it lives on the model's device); each step
draws rows with ``torch.randint`` on the device — no host sync, no Python loop
over units. A row is a random subset of the units within ``width/2`` of a random
centre unit; K is the 5th percentile of the per-centre unit counts capped at
``neighbourhood_size`` (TDANN keeps 95 % of neighbourhoods and at most 500 units),
and the 5 % of centres with fewer units are dropped.

Position pre-optimisation
-------------------------
TDANN starts training from positions swap-optimised on a network's responses
(nearby units already correlate). :meth:`TDANNNet.optimize_positions` does this
with :func:`cortexsim.swapopt.swap_optimize` per layer (units move only within a
local neighbourhood, so retinotopy is kept); ``Trainer(swapopt=N,
swapopt_reference=RUN_DIR)`` / ``cortexsim train --swapopt N`` run it before the
first step. Positions and neighbourhood tables are persistent buffers, so they
are saved in checkpoints and ``model.pt`` and reach ``export_cortex``.

Defaults per layer (TDANN's ResNet-18 area mapping, ``spacetorch``):

==========  ======  ============  ===================  =====================
layer       area    sheet (mm)    width / sheet side   width (mm)
==========  ======  ============  ===================  =====================
layer1.x    retina  10            0.0198               0.198
layer2.x    V1      35            0.0455               1.59
layer3.0    V2      35            0.1136               3.98
layer3.1    V4      35            0.1136               3.98
layer4.x    IT      70            0.4545               31.8
==========  ======  ============  ===================  =====================

The width ratios are TDANN's (V1 1.626 mm on a 35.75 mm sheet, V2 3.977/35,
V4 2.545/22.4, VTC 31.818/70). Sheet sizes follow
:data:`cortexsim.layout.DEFAULT_SHEET_MM` and never shrink with depth (TDANN's V4
sheet is 22.4 mm; we keep V2's 35 mm so sizes increase monotonically), and the
layer-1 "retina" sheet is 10 mm. Override with ``sheet_mm`` / ``neighbourhood_mm``
(a number for all layers or a dict layer -> mm).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import nn

from cortexsim.layout import resolve_layout_params

from .archs import arch_kwargs, build_arch, canonical_arch, head_name
from .base import AdapterError, MethodSpec, TopographicNet, register
from .hooks import PREFIX, HookedNet, areas_for, float32_loss, check_lam, check_layout, place_layers, resolve_layers

LAYERS: tuple[str, ...] = ("layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer3.1", "layer4.0", "layer4.1")
#: TDANN's brain mapping of ResNet-18 stages (by layer name prefix).
AREA_OF: dict[str, str] = {
    "layer1": "retina", "layer2": "V1", "layer3.0": "V2", "layer3.1": "V4", "layer3": "V2", "layer4": "IT",
}
SHEET_MM: dict[str, float] = {"retina": 10.0, "V1": 35.0, "V2": 35.0, "V4": 35.0, "IT": 70.0}
WIDTH_FRACTION: dict[str, float] = {"retina": 0.0198, "V1": 0.0455, "V2": 0.1136, "V4": 0.1136, "IT": 0.4545}
#: Areas exported by a trained TDANN (the layers TDANN analyses as V1 and VTC/IT).
AREAS: dict[str, str] = {"V1": "layer2.0", "V2": "layer3.0", "V4": "layer3.1", "IT": "layer4.1"}
VARIANTS = ("rel", "abs")


def area_of(layer: str) -> str:
    """TDANN area of a ResNet-18 module (longest matching prefix; 'IT' for anything else)."""
    for prefix in sorted(AREA_OF, key=len, reverse=True):
        if layer == prefix or layer.startswith(prefix + "."):
            return AREA_OF[prefix]
    return "IT"


def neighbourhood_table(
    positions: np.ndarray, width_mm: float, max_units: int = 500, n_rows: int = 1024, *, seed: int = 0
) -> np.ndarray:
    """Table of cortical neighbourhoods: (R, K) int64 unit indices, each row sorted.

    Parameters
    ----------
    positions : (U, 2) mm
    width_mm : diameter of a neighbourhood
    max_units : K cap (TDANN: 500)
    n_rows : number of random centres (R ≤ n_rows after dropping the 5 % smallest)
    seed : seed of centres and subsets
    """
    positions = np.asarray(positions, dtype=float)
    n = len(positions)
    if width_mm <= 0:
        raise AdapterError(f"neighbourhood width must be > 0 mm; got {width_mm}.")
    rng = np.random.default_rng(seed)
    centres = positions[rng.choice(n, size=min(n_rows, n), replace=False)]
    tree, radius = cKDTree(positions), width_mm / 2
    count = np.asarray(tree.query_ball_point(centres, radius, return_length=True))
    k = int(min(max_units, np.floor(np.quantile(count, 0.05))))  # TDANN keeps 95 % of neighbourhoods
    if k < 3:
        raise AdapterError(
            f"neighbourhoods of {width_mm:.3g} mm hold only {k} units (need ≥ 3 for a correlation of "
            f"correlations); increase neighbourhood_mm or the layer's unit density (smaller sheet_mm)."
        )
    centres = centres[count >= k]
    k_all = int(min(n, count.max()))  # enumerate whole discs, so a row is a uniform subset of its disc
    rows = []
    for start in range(0, len(centres), 128):  # chunks of centres bound the (chunk, k_all) temporaries
        dist, idx = tree.query(centres[start : start + 128], k=k_all, distance_upper_bound=radius)
        dist, idx = dist.reshape(-1, k_all), idx.reshape(-1, k_all)
        keys = np.where(np.isfinite(dist), rng.random(dist.shape), np.inf)
        pick = np.argpartition(keys, k - 1, axis=1)[:, :k] if k < k_all else np.arange(k)[None].repeat(len(keys), 0)
        rows.append(np.take_along_axis(idx, pick, axis=1))
    return np.sort(np.concatenate(rows), axis=1).astype(np.int64)


def _zscore(x: torch.Tensor, dim: int, eps: float = 1e-8) -> torch.Tensor:
    """Centre along ``dim`` and scale to unit norm, so a dot product along ``dim`` is a Pearson r.

    ``eps`` keeps constant (dead) units at r = 0 instead of NaN.
    """
    x = x - x.mean(dim, keepdim=True)
    return x * torch.rsqrt(x.square().sum(dim, keepdim=True) + eps)


def pearson(a: torch.Tensor, b: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Pearson correlation of ``a`` and ``b`` along ``dim`` (broadcast over the other dims)."""
    return (_zscore(a, dim) * _zscore(b, dim)).sum(dim)


@float32_loss
def spatial_correlation_loss(
    features: torch.Tensor,
    positions: torch.Tensor,
    neighbourhoods: torch.Tensor,
    pairs: torch.Tensor,
    variant: str = "rel",
) -> torch.Tensor:
    """TDANN spatial loss averaged over the given neighbourhoods.

    Parameters
    ----------
    features : (N, U) or (N, C, H, W) responses of a batch (computed in float32)
    positions : (U, 2) mm
    neighbourhoods : (S, K) long unit indices, one neighbourhood per row
    pairs : (P,) long flat indices i·K + j of the pairs i < j
    variant : "rel" (SL_Rel) or "abs" (SL_Abs)

    Returns
    -------
    0-dim tensor
    """
    x = features.flatten(1).float()
    s, k = neighbourhoods.shape
    z = _zscore(x[:, neighbourhoods.reshape(-1)].reshape(-1, s, k).transpose(0, 1), dim=1)  # (S, N, K)
    r = torch.bmm(z.transpose(1, 2), z).reshape(s, k * k)[:, pairs]  # response correlations (S, P)
    pos = positions[neighbourhoods]  # (S, K, 2)
    d = torch.cdist(pos, pos, compute_mode="donot_use_mm_for_euclid_dist").reshape(s, k * k)[:, pairs]
    t = 1.0 / (d + 1.0)
    if variant == "rel":
        return ((1.0 - pearson(r, t, dim=1)) / 2.0).mean()
    return (r - t).abs().mean()


class TDANNNet(HookedNet):
    """ResNet-18 with the TDANN spatial loss on hooked residual-block outputs."""

    method = "tdann"

    def __init__(self, net: nn.Module, layers: list[str], head: str, alpha: float, variant: str, per_step: int) -> None:
        super().__init__(net, capture=layers, head=head)
        self.alpha, self.variant, self.per_step = alpha, variant, per_step
        self.layer_names = list(layers)
        self.register_load_state_dict_post_hook(TDANNNet._sync_placements)

    def set_neighbourhoods(self, name: str, positions: np.ndarray, table: np.ndarray) -> None:
        i = self.layer_names.index(name)
        k = table.shape[1]
        iu, ju = np.triu_indices(k, 1)
        # Positions and neighbourhoods are persistent: swap-optimised positions
        # (:meth:`optimize_positions`) travel with checkpoints and model.pt.
        self.register_buffer(f"pos_{i}", torch.as_tensor(positions, dtype=torch.float32))
        self.register_buffer(f"nbr_{i}", torch.as_tensor(table))
        self.register_buffer(f"pairs_{i}", torch.as_tensor(iu * k + ju, dtype=torch.long), persistent=False)

    def _sync_placements(self, *_: Any) -> None:
        """Copy the position buffers into ``self.placements`` (what ``export_cortex`` records)."""
        for i, name in enumerate(self.layer_names):
            key = PREFIX + name
            if key in self.placements:
                pos = getattr(self, f"pos_{i}").detach().cpu().numpy().astype(np.float64)
                if not np.allclose(pos, self.placements[key].positions, rtol=0, atol=1e-5):
                    self.placements[key] = dataclasses.replace(self.placements[key], positions=pos)

    @torch.no_grad()
    def optimize_positions(
        self,
        images: torch.Tensor,
        *,
        reference: nn.Module | None = None,
        iterations: int = 200,
        neighbourhood: int = 32,
        batch: int = 64,
        batch_size: int = 64,
        seed: int = 0,
        progress: bool = False,
    ) -> dict[str, dict[str, float]]:
        """TDANN position pre-optimisation: swap units inside neighbourhoods so nearby units correlate.

        TDANN initialises unit positions from the responses of a network trained
        without the spatial loss, then trains with those positions fixed. Each
        layer's units are permuted over its own retinotopic slots with
        :func:`cortexsim.swapopt.swap_optimize` (a unit only moves within a local
        neighbourhood, so retinotopy is kept); the neighbourhood table follows
        the units, and :attr:`placements` are updated so ``export_cortex`` records
        the new positions. Call it before training (the :class:`Trainer` does so
        with ``swapopt=N``).

        Parameters
        ----------
        images : (N, C, H, W) float tensor
            Stimuli whose responses define the correlations (e.g. a few hundred
            training images).
        reference : nn.Module, optional
            Network giving the responses, with the same regularised module names
            (``"layer2.0"`` or ``"net.layer2.0"``), e.g. a trained baseline ResNet-18.
            Default: this network as it is now.
        iterations, neighbourhood, batch, seed : see :func:`~cortexsim.swapopt.swap_optimize`
        batch_size : images per forward pass
        progress : tqdm bars

        Returns
        -------
        dict layer -> ``{"loss_before", "loss_after"}``: this method's spatial loss
        (SL_Rel / SL_Abs) of the reference responses over (up to) 128 table
        neighbourhoods, at the old and the new positions.
        """
        from cortexsim.swapopt import swap_optimize

        if images.ndim != 4 or not torch.is_floating_point(images):
            raise AdapterError(f"images must be a float (N, C, H, W) tensor; got {tuple(images.shape)} {images.dtype}.")
        if len(images) < 3:
            raise AdapterError(f"need at least 3 images to correlate responses; got {len(images)}.")
        responses = _layer_responses(reference if reference is not None else self, self.layer_names, images, batch_size)
        report = {}
        for i, name in enumerate(self.layer_names):
            pos_t, table = getattr(self, f"pos_{i}"), getattr(self, f"nbr_{i}")
            resp = responses[name].to(pos_t.device)
            if resp.shape[1] != len(pos_t):
                raise AdapterError(f"reference layer {name!r} has {resp.shape[1]} units; this network has {len(pos_t)}.")
            rows, pairs = table[: min(len(table), 128)], getattr(self, f"pairs_{i}")
            before = spatial_correlation_loss(resp, pos_t, rows, pairs, self.variant)
            perm = swap_optimize(resp, pos_t.cpu().numpy(), neighbourhood=neighbourhood, iterations=iterations,
                                 batch=batch, seed=seed + i, device=pos_t.device, progress=progress)
            perm_t = torch.as_tensor(perm, device=pos_t.device)
            inv = torch.argsort(perm_t)  # slot -> unit now sitting there
            pos_t.copy_(pos_t[perm_t])  # advanced indexing reads into a new tensor first
            table.copy_(inv[table].sort(dim=1).values)  # each row keeps its cortical disc, now with the units in it
            after = spatial_correlation_loss(resp, pos_t, table[: len(rows)], pairs, self.variant)
            report[name] = {"loss_before": float(before), "loss_after": float(after)}
        self._sync_placements()
        return report

    def spatial_loss(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """α · Σ_l SL_l over the layers, with ``per_step`` random neighbourhoods per layer."""
        per_layer = {}
        for i, name in enumerate(self.layer_names):
            table = getattr(self, f"nbr_{i}")
            rows = torch.randint(table.shape[0], (self.per_step,), device=table.device)
            per_layer[name] = spatial_correlation_loss(
                self.activation(name), getattr(self, f"pos_{i}"), table[rows], getattr(self, f"pairs_{i}"), self.variant
            )
        total = self.alpha * torch.stack(list(per_layer.values())).sum()
        return total, per_layer


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


def _per_layer(value: float | dict[str, float] | None, layer: str, default: float, what: str) -> float:
    if value is None:
        return default
    v = value.get(layer, default) if isinstance(value, dict) else value
    if not v > 0:
        raise AdapterError(f"{what} must be > 0 mm; got {v!r} for layer {layer!r}.")
    return float(v)


def build(
    arch: str = "resnet18",
    num_classes: int = 1000,
    *,
    layout: str | None = None,
    lam: float = 0.25,
    layers: list[str] | None = None,
    seed: int = 0,
    image_size: int = 32,
    variant: str = "rel",
    sheet_mm: float | dict[str, float] | None = None,
    neighbourhood_mm: float | dict[str, float] | None = None,
    neighbourhood_size: int = 500,
    n_table: int = 1024,
    neighbourhoods_per_step: int = 1,
    jitter: float = 1.0,
    **kwargs: Any,
) -> TopographicNet:
    """Build a TDANN ResNet-18.

    Parameters
    ----------
    arch : "resnet18"
    num_classes : int
    layout : "retinotopic" (the only one TDANN trains with; None means it)
    lam : float
        α, the weight of every layer's spatial loss (TDANN: 0.25).
    layers : list of str, optional
        Modules with (C, H, W) outputs (default :data:`LAYERS`).
    seed : int
        Seeds weights, position jitter and the neighbourhood table.
    image_size : int
        Input side (32 for CIFAR; TDANN trains on 224).
    variant : "rel" | "abs"
    sheet_mm, neighbourhood_mm : float or dict layer -> float, optional
        Sheet side and neighbourhood width (defaults in the module docstring).
    neighbourhood_size : int
        Maximum units per neighbourhood (K cap; TDANN 500).
    n_table : int
        Neighbourhood centres precomputed per layer.
    neighbourhoods_per_step : int
        Neighbourhoods drawn per layer and step (TDANN draws 1).
    jitter : float in [0, 1]
        Scatter of a pixel's channels inside its patch (:func:`cortexsim.layout.retinotopic`).
    **kwargs : ``in_channels``, ``cifar_stem``, ``maxpool``.
    """
    arch = canonical_arch(arch, ("resnet18",))
    alpha = check_lam(lam)
    layout = check_layout(layout, ("retinotopic",), "tdann")
    if variant not in VARIANTS:
        raise AdapterError(f"variant must be one of {VARIANTS} (SL_Rel or SL_Abs); got {variant!r}.")
    if neighbourhood_size < 3 or neighbourhoods_per_step < 1 or n_table < 1:
        raise AdapterError("neighbourhood_size must be ≥ 3, neighbourhoods_per_step and n_table ≥ 1.")
    akw = arch_kwargs(kwargs, "tdann")
    net = build_arch(arch, num_classes, image_size=image_size, seed=seed, **akw)
    names = resolve_layers(net, layers, LAYERS)
    model = TDANNNet(net, names, head_name(arch), alpha, variant, int(neighbourhoods_per_step))
    shapes = model.probe_shapes(image_size, akw.get("in_channels", 3))
    for name, shape in shapes.items():
        if len(shape) != 3:
            raise AdapterError(f"tdann regularises (C, H, W) feature maps; layer {name!r} outputs {shape}.")
    params = {}
    for name in names:
        area = area_of(name)
        size = _per_layer(sheet_mm, name, SHEET_MM[area], "sheet_mm")
        params[name] = resolve_layout_params(layout, area, {"size_mm": size, "seed": seed, "jitter": jitter})
    model.placements = place_layers(shapes, layout, params)
    for j, name in enumerate(names):
        area = area_of(name)
        size = params[name]["size_mm"]
        width = _per_layer(neighbourhood_mm, name, WIDTH_FRACTION[area] * size, "neighbourhood_mm")
        pos = model.placements[PREFIX + name].positions
        model.set_neighbourhoods(name, pos, neighbourhood_table(pos, width, neighbourhood_size, n_table, seed=seed + j))
    model.layout = layout
    model.areas = areas_for(AREAS, names)
    return model


SPEC = register(
    MethodSpec(
        name="tdann",
        build=build,
        archs=("resnet18",),
        defaults={
            "lam": 0.25, "task": "supervised", "optimizer": "sgd", "lr": 0.1, "momentum": 0.9,
            "weight_decay": 1e-4, "batch_size": 256, "image_size": 224, "layout": "retinotopic",
        },
        paper=(
            "Margalit, Lee, Finzi, DiCarlo, Grill-Spector & Yamins (2024) A unifying framework for functional "
            "organization in early and higher ventral visual cortex. Neuron; Lee et al. (2020) bioRxiv."
        ),
    )
)
