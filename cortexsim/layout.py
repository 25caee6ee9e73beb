"""Positions of units on the simulated cortical sheet, in mm.

Every layout is a pure function of a layer's size (and a seed where it is
random) returning an array of positions. Two granularities exist:

* **channel level** (Poli, Dupoux & Riad 2023): one position per channel —
  :func:`grid2d`, :func:`nested_grid`, :func:`circle`, :func:`grid3d`,
  :func:`sphere`, :func:`nested3d`; and :func:`square_grid` for a dense layer
  (Truong & Hasson's 11×11 grid) and :func:`reset_tiling` (Hannagan's Reset grid);
  and :func:`topoloss_sheet` (Deb et al.'s h × w TopoLoss sheet);
* **unit level**: :func:`retinotopic` (TDANN, Margalit et al. 2024): every unit
  of a C×H×W feature map gets its own position; the feature-map row/col anchor
  the unit's receptive field on the sheet (neighbouring patches overlap as in
  TDANN), the C channels at one row/col are scattered inside that patch, and
  every position gets TDANN's 0.3 mm Gaussian jitter (seeded here).

Each channel layout reproduces the reference implementation's positions by
default (``variant="reference"``: bootphon/topography for Poli et al.'s six
layouts); ``variant="cortexsim"`` keeps cortexsim's earlier variants.

:func:`place` turns a layout name and a layer's output shape into a
:class:`Placement` (channel/row/col/positions per sheet unit) used by recording
and by the adapters. The channel layouts live in :mod:`cortexsim.channel_layouts`
(every name re-exported here).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .channel_layouts import (  # noqa: F401 - re-exported: cortexsim.layout keeps every layout name
    VARIANTS, _axis, _check_n, _check_variant, _nested_cortexsim, _nested_reference, circle, grid2d, grid3d, nested3d,
    nested_grid, reset_tiling, reset_tiling_rowcol, sphere, square_grid, topoloss_sheet, topoloss_sheet_shape,
)
from .errors import LayoutError
from .seeding import numpy_rng

#: TDANN's cortical sheet sizes (side of a square, mm), ``spacetorch.constants``: retina 2.4 mm
#: (~300 µm per degree over the central 8°), V1 36.75 mm (√13.5 cm², Benson et al.), V2 35 mm,
#: V4 22.4 mm, VTC 70 mm (the NSD ventral temporal ROI). ``IT`` is TDANN's VTC.
TDANN_SHEET_MM: dict[str, float] = {"retina": 2.4, "V1": 36.75, "V2": 35.0, "V4": 22.4, "IT": 70.0, "VTC": 70.0}
#: TDANN's receptive-field overlap of neighbouring feature-map positions per area: 10 % in the
#: first ResNet-18 stage, doubled with every halving of the feature map (layer2 20 %, layer3 40 %,
#: layer4 80 %; ``scripts/save_retinotopic_positions.py``).
TDANN_RF_OVERLAP: dict[str, float] = {"retina": 0.1, "V1": 0.2, "V2": 0.4, "V4": 0.4, "IT": 0.8, "VTC": 0.8}
#: s.d. (mm) of TDANN's Gaussian position jitter (``jitter_positions(..., jitter=0.3)``).
TDANN_JITTER_MM = 0.3
#: cortexsim's earlier sheet sizes (``preset="cortexsim"``): a 10 mm "retina" and no V4 sheet smaller
#: than V2 (sizes never shrink with depth).
CORTEXSIM_SHEET_MM: dict[str, float] = {"retina": 10.0, "V1": 35.0, "V2": 35.0, "V4": 35.0, "IT": 70.0, "VTC": 70.0}
#: Default sheet sizes of retinotopic layouts (TDANN's); unknown areas get 10 mm.
DEFAULT_SHEET_MM: dict[str, float] = TDANN_SHEET_MM
PRESETS: tuple[str, ...] = ("reference", "cortexsim")


# --------------------------------------------------------------------------- unit level


def rf_centres(n: int, size_mm: float, rf_overlap: float = 0.0) -> tuple[np.ndarray, float]:
    """Centres (n,) and radius of n receptive-field patches tiling a ``size_mm`` side (TDANN).

    Patches of width W = size / (n − n·o + o) overlap their neighbours by a fraction o
    (n patches minus (n − 1) overlaps fill the side); centres are evenly spaced from W/2 to
    size − W/2. o = 0 gives the plain partition into n patches of size/n.
    """
    if not 0 <= rf_overlap < 1:
        raise LayoutError(f"rf_overlap must be in [0, 1); got {rf_overlap}.")
    width = size_mm / (n - n * rf_overlap + rf_overlap)
    return np.linspace(width / 2, size_mm - width / 2, n), width / 2


def retinotopic(
    shape: tuple[int, int, int],
    size_mm: float = 10.0,
    *,
    seed: int = 0,
    jitter: float = 1.0,
    rf_overlap: float = 0.0,
    jitter_mm: float = 0.0,
) -> np.ndarray:
    """TDANN retinotopic positions for every unit of a C×H×W feature map.

    Feature-map position (h, w) anchors a receptive-field patch of the ``size_mm`` square
    sheet (:func:`rf_centres` per axis: columns → x, rows → y), so retinotopy is preserved.
    The C units at (h, w) are scattered uniformly in their patch, ±``jitter``·W/2 about its
    centre (TDANN: ``jitter`` = 1; 0 puts all channels at the centre). Then, as TDANN does,
    every position gets Gaussian noise of s.d. ``jitter_mm`` and each axis is rescaled back to
    its range before the noise (TDANN's "squish and slide"), so the sheet keeps its extent.

    Parameters
    ----------
    shape : (C, H, W)
    size_mm : float
        Side of the square sheet in mm (see :data:`DEFAULT_SHEET_MM`).
    seed : int
        Seed of the scatter and the noise; the same seed gives the same positions (TDANN's
        noise is unseeded).
    jitter : float in [0, 1]
    rf_overlap : float in [0, 1)
        Overlap of neighbouring patches (TDANN: :data:`TDANN_RF_OVERLAP`; 0 = disjoint patches).
    jitter_mm : float ≥ 0
        s.d. of the Gaussian noise in mm (TDANN: :data:`TDANN_JITTER_MM`; 0 = none).

    Returns
    -------
    ndarray, shape (C·H·W, 2), in mm, units in ``tensor.flatten()`` order (c, h, w).
    """
    if len(shape) != 3:
        raise LayoutError(f"retinotopic layout needs a (C, H, W) feature map; got shape {tuple(shape)}.")
    c, h, w = (_check_n(s, "feature-map size") for s in shape)
    if not 0 <= jitter <= 1:
        raise LayoutError(f"jitter must be in [0, 1]; got {jitter}.")
    if size_mm <= 0:
        raise LayoutError(f"size_mm must be positive; got {size_mm}.")
    if not jitter_mm >= 0:
        raise LayoutError(f"jitter_mm must be ≥ 0; got {jitter_mm}.")
    rng = numpy_rng(seed)
    u = jitter * (rng.random((c, h, w, 2)) - 0.5)  # offsets in patch radii / 2, in [−½, ½]·jitter
    cx, rx = rf_centres(w, size_mm, rf_overlap)
    cy, ry = rf_centres(h, size_mm, rf_overlap)
    x = cx[None, None, :] + u[..., 0] * 2 * rx
    y = cy[None, :, None] + u[..., 1] * 2 * ry
    pos = np.stack([x.ravel(), y.ravel()], axis=1)
    if jitter_mm > 0:
        noisy = pos + rng.normal(0.0, jitter_mm, size=pos.shape)
        span, noisy_span = np.ptp(pos, axis=0), np.ptp(noisy, axis=0)
        scale = np.divide(span, noisy_span, out=np.ones(2), where=noisy_span > 0)
        squished = noisy * scale
        pos = squished - squished.min(axis=0) + pos.min(axis=0)
    return pos


# --------------------------------------------------------------------------- placement


@dataclass(frozen=True)
class Placement:
    """Where the units of one layer sit on the sheet.

    Attributes
    ----------
    positions : ndarray (n_units, 2 | 3), mm
    channel, row, col : ndarray (n_units,) of int (row/col −1 when the unit has no map position)
    level : {"unit", "channel"}
        ``"channel"``: one sheet unit per channel; a conv layer's response is
        reduced over its H×W map (see ``SimulatedCortex(spatial=...)``).
    layout : str
    params : dict
    """

    positions: np.ndarray
    channel: np.ndarray
    row: np.ndarray
    col: np.ndarray
    level: str
    layout: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n_units(self) -> int:
        return len(self.channel)


_CHANNEL_LAYOUTS: dict[str, Callable[..., np.ndarray]] = {
    "grid2d": grid2d,
    "nested_grid": nested_grid,
    "circle": circle,
    "grid3d": grid3d,
    "sphere": sphere,
    "nested3d": nested3d,
    "square_grid": square_grid,
    "topoloss": topoloss_sheet,
}
LAYOUTS: tuple[str, ...] = tuple(_CHANNEL_LAYOUTS) + ("retinotopic", "reset")
#: Dense-layer layouts whose units have a grid row/col (recorded in the Sheet's ``row``/``col``).
_GRID_ROWCOL: dict[str, Callable[[int], int]] = {
    "square_grid": lambda n: math.isqrt(n - 1) + 1 if n > 1 else 1,
    "topoloss": lambda n: topoloss_sheet_shape(n)[1],
}


def place(layout: str, shape: tuple[int, ...], **params: Any) -> Placement:
    """Place the units of a layer whose per-stimulus output has ``shape``.

    Parameters
    ----------
    layout : one of :data:`LAYOUTS`
    shape : (C, H, W) for a conv layer, (F,) for a dense layer
    **params : passed to the layout function (``size_mm``, ``scale_mm``,
        ``spacing_mm``, ``seed``, ``jitter``, ``rf_overlap``, ``jitter_mm``, ``variant``,
        ``n_subnets``, ``grid``).

    Returns
    -------
    Placement
    """
    shape = tuple(int(s) for s in shape)
    if layout == "retinotopic":
        if len(shape) != 3:
            raise LayoutError(
                f"'retinotopic' places units of a (C, H, W) feature map; this layer outputs {shape}. "
                f"Use 'square_grid' or a channel layout for a dense layer."
            )
        pos = retinotopic(shape, **params)
        c, h, w = np.meshgrid(*(np.arange(s) for s in shape), indexing="ij")
        return Placement(pos, c.ravel(), h.ravel(), w.ravel(), "unit", layout, dict(params))
    if layout == "reset":
        n_units = int(np.prod(shape))
        n_sub = int(params.get("n_subnets", 1))
        grid = int(params.get("grid", math.isqrt(n_units)))
        if grid * grid != n_units:
            raise LayoutError(f"'reset' needs a layer of grid² units; this layer has {n_units} (shape {shape}).")
        row, col, _ = reset_tiling_rowcol(n_sub, grid)
        pos = np.stack([col, row], axis=1).astype(float) * float(params.get("spacing_mm", 1.0))
        return Placement(pos, np.arange(n_units), row, col, "unit", layout, dict(params))
    if layout not in _CHANNEL_LAYOUTS:
        raise LayoutError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}.")
    n_channels = shape[0]
    try:
        pos = _CHANNEL_LAYOUTS[layout](n_channels, **params)
    except TypeError as exc:
        raise LayoutError(f"bad parameter for layout {layout!r}: {exc}") from exc
    minus = np.full(n_channels, -1)
    if layout in _GRID_ROWCOL and len(shape) == 1:
        row, col = np.divmod(np.arange(n_channels), _GRID_ROWCOL[layout](n_channels))
        return Placement(pos, np.arange(n_channels), row, col, "channel", layout, dict(params))
    return Placement(pos, np.arange(n_channels), minus, minus.copy(), "channel", layout, dict(params))


def resolve_layout_params(
    layout: str, area: str, params: Mapping[str, Any] | None, preset: str = "reference"
) -> dict[str, Any]:
    """Fill in an area's defaults of a retinotopic layout (other layouts: ``params`` unchanged).

    ``preset="reference"`` (default) gives TDANN's sheet (:data:`TDANN_SHEET_MM`, 10 mm for
    unknown areas), receptive-field overlap (:data:`TDANN_RF_OVERLAP`, 0 for unknown areas) and
    0.3 mm position jitter; ``preset="cortexsim"`` cortexsim's earlier sheets
    (:data:`CORTEXSIM_SHEET_MM`) with disjoint patches and no jitter. Keys already in
    ``params`` are kept.
    """
    if preset not in PRESETS:
        raise LayoutError(f"preset must be one of {PRESETS}; got {preset!r}.")
    out = dict(params or {})
    if layout == "retinotopic":
        ref = preset == "reference"
        out.setdefault("size_mm", (TDANN_SHEET_MM if ref else CORTEXSIM_SHEET_MM).get(area, 10.0))
        out.setdefault("rf_overlap", TDANN_RF_OVERLAP.get(area, 0.0) if ref else 0.0)
        out.setdefault("jitter_mm", TDANN_JITTER_MM if ref else 0.0)
    return out
