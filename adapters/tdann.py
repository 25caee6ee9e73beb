"""``tdann``: the TDANN spatial correlation loss (Margalit et al. 2024; Lee et al. 2020).

Every unit of the regularised feature maps gets a retinotopic position
(:func:`cortexsim.layout.retinotopic`). At each step, per layer, a few cortical
neighbourhoods are drawn; inside one neighbourhood of K units,

* r_ij = Pearson correlation over the batch of the responses of units i and j,
* t_ij = 1 / (d_ij + 1), d_ij their cortical distance in mm,
* **SL_Rel** = (1 − Pearson_{i<j}(r_ij, t_ij)) / 2   (default, "rel"; in [0, 1]),
* **SL_Abs** = mean_{i<j} |r_ij − t_ij|                ("abs", TDANN's 2020 loss).

The loss is L = L_task + Σ_l α_l · SL_l with α = 0.25 for every residual-block
output of ResNet-18 (``layer1.0`` … ``layer4.1``), one neighbourhood per layer and
step. The task loss is the trainer's (supervised cross-entropy, or SimCLR on
:meth:`features`). The loss formulas equal ``spacetorch``'s (``losses_torch.py``)
to float32 precision.

Defaults: ``preset="reference"`` — TDANN as its authors built it
------------------------------------------------------------------
Everything below follows TDANN's public code (``neuroailab/TDANN``, ``spacetorch``,
``scripts/save_retinotopic_positions.py``, the training configs):

==========  ======  =========  ==========  ==================  =========
layer       area    sheet mm   RF overlap  neighbourhood (mm)  jitter
==========  ======  =========  ==========  ==================  =========
layer1.x    retina  2.4        10 %        0.0475              0.3 mm
layer2.x    V1      36.75      20 %        1.626               0.3 mm
layer3.0    V2      35         40 %        3.977               0.3 mm
layer3.1    V4      22.4       40 %        2.545               0.3 mm
layer4.x    IT      70         80 %        31.818              0.3 mm
==========  ======  =========  ==========  ==================  =========

* **Positions.** Feature-map position (h, w) anchors a receptive-field patch; neighbouring
  patches overlap (10 % in layer1, doubled with each halving of the map); a unit is placed
  uniformly in its patch, then every position gets Gaussian noise of s.d. 0.3 mm and each
  axis is rescaled to its former range (TDANN's ``jitter_positions``). The noise is
  **seeded** here (TDANN's is not). The widths are TDANN's patch widths at 224 px and are
  absolute mm — the target 1/(d + 1) is in mm — so they do not change with ``image_size``.
* **Neighbourhoods.** 20,000 squares of side = width, centres uniform over the sheet shrunk
  by half a width on every side (squares never cross the edge); K = max(5th percentile of
  the square counts, 25), capped at 500; squares with fewer than K units are dropped and
  each kept square contributes a uniform random subset of K units (TDANN's
  ``precompute_neighborhoods`` / ``collapse_and_trim_neighborhoods``).
* **Recipe** (``MethodSpec.defaults``; TDANN's supervised config
  ``supswap_supervised/supervised_spatial_resnet18_swappedon_SineGrating2019.yaml``): SGD,
  momentum 0.9, Nesterov, weight decay 1e-6 (not on BatchNorm parameters), cosine schedule
  to 0 over 200 epochs, global batch 512 (256 per GPU × 2). Its ``start_value: 0.15`` is
  overwritten by VISSL's ``auto_lr_scaling`` (base 0.3 per 256 images, linear), so the lr
  that ran is 0.3 × 512/256 = 0.6; cortexsim's trainer scales a default SGD lr the same
  way (lr 0.6 × global batch / 512 = 0.3 per 256).

Deliberate differences, as named options
----------------------------------------
* **Task: supervised by default; the paper's main TDANN is self-supervised.** The figures of
  Margalit et al. use ``simswap_simclr/simclr_spatial_resnet18_swappedon_SineGrating2019_isoswap_3``
  (SimCLR, τ 0.1, 4 × 128 images, the same lr / schedule / weight decay without Nesterov); the
  supervised TDANN above is the paper's objective comparison. cortexsim defaults to it because it
  trains on any labelled set with one view per image, where SimCLR needs two views and large
  batches to learn. ``Trainer(method="tdann", task="simclr", nesterov=False, batch_size=512)``
  is the main model's recipe; its SimCLR views follow VISSL's config by default (colour jitter
  strength 1.0, crop scale (0.08, 1), Gaussian blur p 0.5; ``simclr_strength`` / ``simclr_blur`` /
  ``simclr_min_scale`` override them — cortexsim's other methods use 0.5, (0.2, 1), no blur), and
  its projection head has a BatchNorm that VISSL's ``mlp`` 512 → 512 → 128 does not.
* ``preset="cortexsim"`` — cortexsim's earlier setup: sheets 10 / 35 / 35 / 35 / 70 mm
  (a 10 mm "retina", sizes never shrinking with depth), widths as TDANN's width/sheet
  ratios of those sheets (V1 0.0455 × 35 = 1.59 mm, where TDANN has 1.626 mm on 36.75 mm),
  disjoint patches and no jitter, and ``neighbourhood_shape="disc"``: 1,024 discs around
  random units (edges included), K = 5th percentile of the disc counts (≥ 3), capped at 500.
* **Swap pre-optimisation: cortexsim's algorithm by default, TDANN's as**
  ``swap_algorithm="tdann"`` (:func:`cortexsim.swapopt.swap_optimize_windows`, its rule shown
  equal to spacetorch's swap for swap). TDANN's rule is sequential inside a square and its IT
  squares (31.8 mm on a 70 mm sheet) all overlap, so its 100,000 squares × 500 attempts per layer
  are 5·10⁷ sequential steps (about 1 ms each on a CPU: ~14 h per IT layer). cortexsim's
  :func:`cortexsim.swapopt.swap_optimize` (the best swap of Σ C·D in each of 64 groups of the
  32 nearest units per round) reorders as locally in a few hundred rounds; the resulting
  positions are not identical. ``swap_steps`` sets the attempts per square of the TDANN rule.
* ``jitter`` (in-patch scatter), ``rf_overlap``, ``jitter_mm``, ``sheet_mm``,
  ``neighbourhood_mm``, ``neighbourhood_shape``, ``n_table``, ``min_neighbourhood`` override
  single points.

Remaining differences from the reference (not options)
------------------------------------------------------
* Inputs: cortexsim trains at any ``image_size`` (32 px CIFAR stem by default on small
  images; ``image_size=224`` on an ImageNet folder is TDANN's setting) where TDANN trains at
  224 px; positions are placed on the real feature maps, so at 32 px a retina square holds ~26
  units on average instead of ~78. The trainer's images are in [0, 1]; TDANN's ImageNet
  mean/s.d. normalisation is the option ``input_norm="imagenet"`` (inside the network, so it still
  records cortexsim's [0, 1] stimuli), off by default because the statistics belong to the data.
  The supervised augmentation is TDANN's by default (``augment="tdann"``: random resized crop,
  flip, colour jitter 0.4); ``augment="standard"`` is cortexsim's earlier crop + flip.
* On the 2.4 mm retina sheet the 0.3 mm jitter is large: the squished sheet's extent is set by
  the noise's tails, many squares fall in sparse margins, K hits the 25-unit floor and about half
  of the 20,000 windows are dropped — as in TDANN, whose constants these are.
* TDANN stores one random subset per window in a (20,000, K) table; cortexsim stores the
  window centres only and computes a window's subset when the window is drawn, as the K
  units of smallest hashed key (a fixed function of seed, window and unit), so each window
  again has one fixed uniform random subset — without a 20,000 × 500 table per layer in
  memory and in every checkpoint (:func:`window_members`). After swap pre-optimisation the
  windows are redrawn on the new positions with the same seed (TDANN draws 20,000 new ones);
  the subsets then follow the units now in each window.
* Swap pre-optimisation is **off unless asked for** (``Trainer(swapopt=N)``): TDANN swaps on the
  responses of a network already trained without the spatial loss (its ``lw0`` run) to sine
  gratings, which a first training run cannot have. With ``swap_algorithm="tdann"``:
  TDANN's ``swap_optimize_neighborhoods`` processes squares one after another, cortexsim runs
  batches of non-overlapping squares at once (the same rule, each square seeing the swaps of
  those before it); every random number comes from the seed (TDANN re-seeds the pair generator
  identically for every square); squares of ≥ 500 units are subsampled (TDANN's
  ``np.rng.choice`` there does not exist in NumPy).

Position pre-optimisation
-------------------------
TDANN starts training from positions swap-optimised on a network's responses
(nearby units already correlate). :meth:`TDANNNet.optimize_positions` does this per layer
(units move only locally, so retinotopy is kept). As TDANN: train a baseline (or ``lam=0``)
first, then ``Trainer(swapopt=N, swapopt_reference=RUN_DIR)`` / ``cortexsim train --swapopt N
--swapopt-reference RUN_DIR``, or on TDANN's stimuli ``model.optimize_positions(
stimuli.tdann_gratings(image_size=224).tensor(), reference=trained)``; with
``swap_algorithm="tdann"`` and N = 100,000 this is TDANN's own procedure. Positions are
persistent buffers, so they are saved in checkpoints and ``model.pt`` and reach ``export_cortex``.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from torch import nn

from cortexsim.layout import CORTEXSIM_SHEET_MM, PRESETS, TDANN_SHEET_MM, resolve_layout_params

from .archs import arch_kwargs, build_arch, canonical_arch, head_name
from .base import AdapterError, MethodSpec, TopographicNet, register
from .hooks import PREFIX, HookedNet, areas_for, float32_loss, check_lam, check_layout, place_layers, resolve_layers
from .tdann_positions import (  # noqa: F401  (old import paths: cortexsim.adapters.tdann.neighbourhood_windows …)
    SHAPES, Windows, _layer_responses, _subset_keys, before_training, neighbourhood_table, neighbourhood_windows,
    optimize_positions, window_members)

LAYERS: tuple[str, ...] = ("layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer3.1", "layer4.0", "layer4.1")
#: TDANN's brain mapping of ResNet-18 stages (by layer name prefix).
AREA_OF: dict[str, str] = {
    "layer1": "retina", "layer2": "V1", "layer3.0": "V2", "layer3.1": "V4", "layer3": "V2", "layer4": "IT",
}
#: Sheet sizes (mm) per preset.
SHEET_MM: dict[str, dict[str, float]] = {"reference": TDANN_SHEET_MM, "cortexsim": CORTEXSIM_SHEET_MM}
#: TDANN's neighbourhood widths (mm; ``spacetorch.models.positions.NEIGHBORHOOD_WIDTHS``).
NEIGHBOURHOOD_MM: dict[str, float] = {"retina": 0.0475, "V1": 1.626, "V2": 3.977, "V4": 2.545, "IT": 31.818}
#: ``preset="cortexsim"``: neighbourhood width as a fraction of the sheet side.
WIDTH_FRACTION: dict[str, float] = {"retina": 0.0198, "V1": 0.0455, "V2": 0.1136, "V4": 0.1136, "IT": 0.4545}
#: Areas exported by a trained TDANN (the layers TDANN analyses as V1 and VTC/IT).
AREAS: dict[str, str] = {"V1": "layer2.0", "V2": "layer3.0", "V4": "layer3.1", "IT": "layer4.1"}
VARIANTS = ("rel", "abs")
SWAP_ALGORITHMS = ("tdann", "cortexsim")
#: Per preset: neighbourhood shape, windows drawn, minimum K.
_NEIGHBOURHOODS: dict[str, tuple[str, int, int]] = {"reference": ("square", 20_000, 25), "cortexsim": ("disc", 1024, 3)}


def area_of(layer: str) -> str:
    """TDANN area of a ResNet-18 module (longest matching prefix; 'IT' for anything else)."""
    for prefix in sorted(AREA_OF, key=len, reverse=True):
        if layer == prefix or layer.startswith(prefix + "."):
            return AREA_OF[prefix]
    return "IT"


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

    def __init__(self, net: nn.Module, layers: list[str], head: str, alpha: float, variant: str, per_step: int,
                 swap_algorithm: str = "cortexsim", swap_steps: int = 500) -> None:
        super().__init__(net, capture=layers, head=head)
        self.alpha, self.variant, self.per_step = alpha, variant, per_step
        self.swap_algorithm, self.swap_steps = swap_algorithm, swap_steps
        self.layer_names = list(layers)
        self.window_params: dict[str, dict[str, Any]] = {}
        self.windows: dict[str, Windows] = {}
        self.register_load_state_dict_post_hook(TDANNNet._sync_placements)

    def set_positions(self, name: str, positions: np.ndarray, **windows: Any) -> None:
        """Set a layer's unit positions (U, 2) mm and draw its neighbourhood windows.

        ``windows``: keyword arguments of :func:`neighbourhood_windows` (width_mm, max_units, n_rows,
        seed, shape, min_units), kept so the windows can be redrawn when the positions change.
        """
        i = self.layer_names.index(name)
        # Positions are persistent: swap-optimised positions (:meth:`optimize_positions`) travel
        # with checkpoints and model.pt. The windows are a function of them and the seed, redrawn
        # on load rather than saved.
        self.register_buffer(f"pos_{i}", torch.as_tensor(positions, dtype=torch.float32))
        self.window_params[name] = dict(windows)
        self._draw_windows(i)

    def _draw_windows(self, i: int) -> None:
        name = self.layer_names[i]
        pos = getattr(self, f"pos_{i}")
        win = neighbourhood_windows(pos.detach().cpu().numpy().astype(np.float64), **self.window_params[name])
        self.windows[name] = win
        iu, ju = np.triu_indices(win.k, 1)
        self.register_buffer(f"win_{i}", torch.as_tensor(win.centres, dtype=torch.float32, device=pos.device),
                             persistent=False)
        self.register_buffer(f"pairs_{i}", torch.as_tensor(iu * win.k + ju, dtype=torch.long, device=pos.device),
                             persistent=False)

    def neighbourhoods(self, name: str, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Unit indices (S, K) of layer ``name``'s neighbourhoods ``rows`` (default: all R of them)."""
        i = self.layer_names.index(name)
        centres = getattr(self, f"win_{i}")
        if rows is None:
            rows = torch.arange(len(centres), device=centres.device)
        return window_members(getattr(self, f"pos_{i}"), self.windows[name], centres, rows)

    def _sync_placements(self, *_: Any) -> None:
        """After positions changed (load, swaps): update ``self.placements`` (what ``export_cortex``
        records) and redraw the windows on the new positions."""
        for i, name in enumerate(self.layer_names):
            key = PREFIX + name
            if key in self.placements:
                pos = getattr(self, f"pos_{i}").detach().cpu().numpy().astype(np.float64)
                if not np.allclose(pos, self.placements[key].positions, rtol=0, atol=1e-5):
                    self.placements[key] = dataclasses.replace(self.placements[key], positions=pos)
                    self._draw_windows(i)

    def optimize_positions(self, images: torch.Tensor, **kwargs: Any) -> dict[str, dict[str, float]]:
        """Swap-optimise the positions (TDANN's pre-optimisation); see
        :func:`cortexsim.adapters.tdann_positions.optimize_positions` for the arguments and the report."""
        return optimize_positions(self, images, **kwargs)

    def spatial_loss(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """α · Σ_l SL_l over the layers, with ``per_step`` random neighbourhoods per layer."""
        per_layer = {}
        for i, name in enumerate(self.layer_names):
            centres = getattr(self, f"win_{i}")
            rows = torch.randint(len(centres), (self.per_step,), device=centres.device)
            per_layer[name] = spatial_correlation_loss(
                self.activation(name), getattr(self, f"pos_{i}"), self.neighbourhoods(name, rows),
                getattr(self, f"pairs_{i}"), self.variant
            )
        total = self.alpha * torch.stack(list(per_layer.values())).sum()
        return total, per_layer


def _per_layer(value: Any, layer: str, default: Any, what: str, positive: bool = True) -> Any:
    """``value`` for ``layer``: a number for all layers, a dict layer -> number, or None (default)."""
    if value is None:
        return default
    v = value.get(layer, default) if isinstance(value, dict) else value
    if v is None:
        return None
    if not (v > 0 if positive else v >= 0):
        raise AdapterError(f"{what} must be {'> 0' if positive else '≥ 0'}; got {v!r} for layer {layer!r}.")
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
    preset: str = "reference",
    sheet_mm: float | dict[str, float] | None = None,
    neighbourhood_mm: float | dict[str, float] | None = None,
    neighbourhood_size: int = 500,
    n_table: int | None = None,
    neighbourhood_shape: str | None = None,
    min_neighbourhood: int | None = None,
    neighbourhoods_per_step: int = 1,
    jitter: float = 1.0,
    rf_overlap: float | dict[str, float] | None = None,
    jitter_mm: float | dict[str, float] | None = None,
    swap_algorithm: str = "cortexsim",
    swap_steps: int = 500,
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
        Seeds weights, position scatter and jitter, and the neighbourhood windows.
    image_size : int
        Input side (32 for CIFAR; TDANN trains on 224).
    variant : "rel" | "abs"
    preset : "reference" | "cortexsim"
        TDANN's setup (default) or cortexsim's earlier one (see the module docstring); the
        options below override single points of either.
    sheet_mm, neighbourhood_mm : float or dict layer -> float, optional
        Sheet side and neighbourhood width in mm (reference: TDANN's per-area values).
    neighbourhood_size : int
        Maximum units per neighbourhood (K cap; TDANN 500).
    n_table : int, optional
        Windows drawn per layer (reference 20,000; cortexsim 1,024).
    neighbourhood_shape : "square" | "disc", optional
        TDANN's squares (reference) or discs around units (cortexsim).
    min_neighbourhood : int, optional
        Lower bound of K (reference 25; cortexsim 3).
    neighbourhoods_per_step : int
        Neighbourhoods drawn per layer and step (TDANN draws 1).
    jitter : float in [0, 1]
        Scatter of a pixel's channels inside its receptive-field patch (1: uniform, as TDANN).
    rf_overlap, jitter_mm : float or dict layer -> float, optional
        Patch overlap and Gaussian position jitter (reference: TDANN's 10–80 % and 0.3 mm;
        cortexsim: 0 and 0).
    swap_algorithm : "cortexsim" | "tdann"
        Algorithm of :meth:`TDANNNet.optimize_positions`: cortexsim's batched best-swap search
        (default, both presets: TDANN's sequential rule costs hours per IT layer) or TDANN's
        squares and pair swaps.
    swap_steps : int
        Swap attempts per square of the "tdann" algorithm (TDANN: 500).
    **kwargs : ``in_channels``, ``cifar_stem``, ``maxpool``, ``input_norm`` (``"imagenet"``: TDANN's).
    """
    arch = canonical_arch(arch, ("resnet18",))
    alpha = check_lam(lam)
    layout = check_layout(layout, ("retinotopic",), "tdann")
    if variant not in VARIANTS:
        raise AdapterError(f"variant must be one of {VARIANTS} (SL_Rel or SL_Abs); got {variant!r}.")
    if preset not in PRESETS:
        raise AdapterError(f"preset must be one of {PRESETS}; got {preset!r}.")
    shape_d, rows_d, min_d = _NEIGHBOURHOODS[preset]
    if swap_algorithm not in SWAP_ALGORITHMS:
        raise AdapterError(f"swap_algorithm must be one of {SWAP_ALGORITHMS}; got {swap_algorithm!r}.")
    if isinstance(swap_steps, bool) or not isinstance(swap_steps, int) or swap_steps < 1:
        raise AdapterError(f"swap_steps (swap attempts per square) must be an integer ≥ 1; got {swap_steps!r}.")
    shape = neighbourhood_shape or shape_d
    if shape not in SHAPES:
        raise AdapterError(f"neighbourhood_shape must be one of {SHAPES}; got {shape!r}.")
    n_table = rows_d if n_table is None else n_table
    min_k = min_d if min_neighbourhood is None else min_neighbourhood
    if neighbourhood_size < 3 or neighbourhoods_per_step < 1 or n_table < 1 or min_k < 1:
        raise AdapterError("neighbourhood_size must be ≥ 3; neighbourhoods_per_step, n_table and min_neighbourhood ≥ 1.")
    akw = arch_kwargs(kwargs, "tdann")
    net = build_arch(arch, num_classes, image_size=image_size, seed=seed, **akw)
    names = resolve_layers(net, layers, LAYERS)
    model = TDANNNet(net, names, head_name(arch), alpha, variant, int(neighbourhoods_per_step), swap_algorithm,
                     swap_steps)
    shapes = model.probe_shapes(image_size, akw.get("in_channels", 3))
    for name, shp in shapes.items():
        if len(shp) != 3:
            raise AdapterError(f"tdann regularises (C, H, W) feature maps; layer {name!r} outputs {shp}.")
    params = {}
    for name in names:
        area = area_of(name)
        given = {"size_mm": _per_layer(sheet_mm, name, SHEET_MM[preset][area], "sheet_mm"), "seed": seed,
                 "jitter": jitter}
        for key, value in (("rf_overlap", rf_overlap), ("jitter_mm", jitter_mm)):
            v = _per_layer(value, name, None, key, positive=False)
            if v is not None:
                given[key] = v
        params[name] = resolve_layout_params(layout, area, given, preset)
    model.placements = place_layers(shapes, layout, params)
    for j, name in enumerate(names):
        area = area_of(name)
        default_width = NEIGHBOURHOOD_MM[area] if preset == "reference" else WIDTH_FRACTION[area] * params[name]["size_mm"]
        width = _per_layer(neighbourhood_mm, name, default_width, "neighbourhood_mm")
        model.set_positions(name, model.placements[PREFIX + name].positions, width_mm=width,
                            max_units=int(neighbourhood_size), n_rows=int(n_table), seed=seed + j, shape=shape,
                            min_units=int(min_k))
    model.layout = layout
    model.areas = areas_for(AREAS, names)
    return model


SPEC = register(
    MethodSpec(
        name="tdann",
        build=build,
        archs=("resnet18",),
        # TDANN's supervised recipe (see the module docstring): lr 0.6 at global batch 512 is VISSL's
        # auto-scaled 0.3 per 256; the trainer scales it linearly with the batch the same way.
        defaults={
            "lam": 0.25, "task": "supervised", "optimizer": "sgd", "lr": 0.6, "momentum": 0.9, "nesterov": True,
            "weight_decay": 1e-6, "weight_decay_norm": False, "scheduler": "cosine", "epochs": 200,
            "batch_size": 512, "image_size": 224, "layout": "retinotopic", "arch": "resnet18",
            # The reference's views: supervised random resized crop + flip + colour jitter 0.4; SimCLR
            # (VISSL) jitter strength 1.0, blur p 0.5, crops from 8 % of the area.
            "augment": "tdann", "simclr_strength": 1.0, "simclr_blur": 0.5, "simclr_min_scale": 0.08,
        },
        train_options=("swapopt", "swapopt_images", "swapopt_reference"),
        before_training=before_training,  # swapopt: position pre-optimisation (adapters/tdann_positions.py)
        paper=(
            "Margalit, Lee, Finzi, DiCarlo, Grill-Spector & Yamins (2024) A unifying framework for functional "
            "organization in early and higher ventral visual cortex. Neuron; Lee et al. (2020) bioRxiv."
        ),
    )
)
