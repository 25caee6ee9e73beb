"""Positions of units on the simulated cortical sheet, in mm.

Every layout is a pure function of a layer's size (and a seed where it is
random) returning an array of positions. Two granularities exist:

* **channel level** (Poli, Dupoux & Riad 2023): one position per channel —
  :func:`grid2d`, :func:`nested_grid`, :func:`circle`, :func:`grid3d`,
  :func:`sphere`, :func:`nested3d`; and :func:`square_grid` for a dense layer
  (Truong & Hasson's 11×11 grid) and :func:`reset_tiling` (Hannagan's Reset grid);
* **unit level**: :func:`retinotopic` (TDANN, Margalit et al. 2024): every unit
  of a C×H×W feature map gets its own position; the feature-map row/col anchor
  the unit's receptive field on the sheet and the C channels at one row/col are
  scattered with seeded jitter inside that pixel's patch.

:func:`place` turns a layout name and a layer's output shape into a
:class:`Placement` (channel/row/col/positions per sheet unit) used by recording
and by the adapters.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import LayoutError

#: Approximate human sheet sizes (side of a square, mm). V1 ≈ 1,200–1,500 mm² per
#: hemisphere (≈ 35 mm side); ventral temporal cortex as simulated in TDANN ≈ 70 mm.
DEFAULT_SHEET_MM: dict[str, float] = {"V1": 35.0, "V2": 35.0, "V4": 25.0, "IT": 70.0, "VTC": 70.0}


def _check_n(n: int, name: str = "n") -> int:
    if int(n) != n or n < 1:
        raise LayoutError(f"{name} must be a positive integer; got {n!r}.")
    return int(n)


# --------------------------------------------------------------------------- channel level


def grid2d(n: int, scale_mm: float = 1.0) -> np.ndarray:
    """Poli et al. 2-D grid: channel i (0-based) at (r/N, q/N), (q, r) = divmod(i, N), N = ⌈√n⌉.

    Returns
    -------
    ndarray, shape (n, 2), in mm (coordinates in [0, 1) times ``scale_mm``).
    """
    n = _check_n(n)
    side = math.isqrt(n - 1) + 1 if n > 1 else 1
    q, r = np.divmod(np.arange(n), side)
    return np.stack([r / side, q / side], axis=1) * scale_mm


def grid3d(n: int, scale_mm: float = 1.0) -> np.ndarray:
    """3-D grid: channel i at (a/N, b/N, c/N) with i = (c·N + b)·N + a, N = ⌈n^(1/3)⌉.

    Returns ndarray (n, 3) in mm.
    """
    n = _check_n(n)
    side = 1
    while side**3 < n:
        side += 1
    idx = np.arange(n)
    a, b, c = idx % side, (idx // side) % side, idx // side**2
    return np.stack([a, b, c], axis=1) / side * scale_mm


def circle(n: int, scale_mm: float = 1.0) -> np.ndarray:
    """Poli et al. circle: channel i (1-based) at (cos 2πi/n, sin 2πi/n) times ``scale_mm``.

    Returns ndarray (n, 2) in mm; neighbours i, i+1 are 2·sin(π/n)·scale apart.
    """
    n = _check_n(n)
    angle = 2 * np.pi * np.arange(1, n + 1) / n
    return np.stack([np.cos(angle), np.sin(angle)], axis=1) * scale_mm


def sphere(n: int, scale_mm: float = 1.0) -> np.ndarray:
    """Positions spread regularly on a unit sphere (Fibonacci / golden-angle spiral).

    Returns ndarray (n, 3) in mm, every point at distance ``scale_mm`` from the origin.
    """
    n = _check_n(n)
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    rho = np.sqrt(1 - z**2)
    theta = np.pi * (1 + 5**0.5) * i
    return np.stack([rho * np.cos(theta), rho * np.sin(theta), z], axis=1) * scale_mm


def _nested(n: int, dim: int) -> np.ndarray:
    # Shells k = 1..K of half-width k/(2K) around the centre, each holding the same
    # points (vertices + edge midpoints), so density is highest in the middle.
    offsets = np.array(np.meshgrid(*[[-1, 0, 1]] * dim, indexing="ij")).reshape(dim, -1).T
    n_zero = (offsets == 0).sum(axis=1)
    shell = offsets[(n_zero <= 1) & (n_zero < dim)]  # vertices and edge midpoints
    per_shell = len(shell)
    n_shells = max(1, math.ceil((n - 1) / per_shell))
    pts = [np.zeros((1, dim))]
    for k in range(1, n_shells + 1):
        pts.append(shell * k / (2 * n_shells))
    return np.concatenate(pts)[:n] + 0.5


def nested_grid(n: int, scale_mm: float = 1.0) -> np.ndarray:
    """Poli et al. nested grid: a centre point, then nested squares with a position at each
    vertex and at the middle of each edge (8 per square), inner squares first; in [0, 1]².

    Returns ndarray (n, 2) in mm.
    """
    return _nested(_check_n(n), 2) * scale_mm


def nested3d(n: int, scale_mm: float = 1.0) -> np.ndarray:
    """3-D nested grid: a centre point, then nested cubes with positions at the 8 vertices
    and 12 edge midpoints (20 per cube), inner cubes first; in [0, 1]³.

    Returns ndarray (n, 3) in mm.
    """
    return _nested(_check_n(n), 3) * scale_mm


def square_grid(n: int, spacing_mm: float = 1.0) -> np.ndarray:
    """Square grid for a dense layer (Truong & Hasson: 121 units on 11×11), row-major.

    Unit i sits at column i mod S, row i // S with S = ⌈√n⌉; neighbours are
    ``spacing_mm`` apart. Returns ndarray (n, 2) in mm as (x, y) = (col, row)·spacing.
    """
    n = _check_n(n)
    side = math.isqrt(n - 1) + 1 if n > 1 else 1
    row, col = np.divmod(np.arange(n), side)
    return np.stack([col, row], axis=1).astype(float) * spacing_mm


def reset_tiling_rowcol(n_subnets: int, grid: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid row/col of each unit of a Reset(n, m) grid, units in concatenation order.

    The grid layer of ``Reset(n, m)`` concatenates the outputs of n×n sub-networks,
    each of (m/n)² units; sub-network s = (a, b) (row-major) owns tile a, b of the
    m×m grid and its k-th unit sits at tile row k // (m/n), tile column k mod (m/n).

    Returns
    -------
    row, col, subnetwork : ndarray (m·m,) of int
    """
    n_subnets = _check_n(n_subnets, "n_subnets")
    grid = _check_n(grid, "grid")
    if grid % n_subnets:
        raise LayoutError(f"grid width {grid} must be divisible by the number of sub-networks per side {n_subnets}.")
    tile = grid // n_subnets
    idx = np.arange(grid * grid)
    sub, k = np.divmod(idx, tile * tile)
    sa, sb = np.divmod(sub, n_subnets)
    kr, kc = np.divmod(k, tile)
    return sa * tile + kr, sb * tile + kc, sub


def reset_tiling(n_subnets: int, grid: int = 32, spacing_mm: float = 1.0) -> np.ndarray:
    """Positions (m·m, 2) in mm of a Reset(n, m) grid's units in concatenation order.

    See :func:`reset_tiling_rowcol`; (x, y) = (col, row)·spacing.
    """
    row, col, _ = reset_tiling_rowcol(n_subnets, grid)
    return np.stack([col, row], axis=1).astype(float) * spacing_mm


# --------------------------------------------------------------------------- unit level


def retinotopic(
    shape: tuple[int, int, int], size_mm: float = 10.0, *, seed: int = 0, jitter: float = 1.0
) -> np.ndarray:
    """TDANN retinotopic positions for every unit of a C×H×W feature map.

    The sheet is a ``size_mm`` square divided into H×W patches, one per
    feature-map position (row h, col w), so retinotopy is preserved: patch
    (h, w) spans x ∈ [w, w+1)·size/W, y ∈ [h, h+1)·size/H. The C units at
    (h, w) are scattered uniformly inside their patch (``jitter`` = 1) or shrunk
    towards its centre (``jitter`` < 1; 0 puts all channels at the centre).

    Parameters
    ----------
    shape : (C, H, W)
    size_mm : float
        Side of the square sheet in mm (see :data:`DEFAULT_SHEET_MM`).
    seed : int
        Seed of the jitter; the same seed gives the same positions.
    jitter : float in [0, 1]

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
    rng = np.random.default_rng(seed)
    u = 0.5 + jitter * (rng.random((c, h, w, 2)) - 0.5)
    hh, ww = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    x = (ww[None] + u[..., 0]) * (size_mm / w)
    y = (hh[None] + u[..., 1]) * (size_mm / h)
    return np.stack([x.ravel(), y.ravel()], axis=1)


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
}
LAYOUTS: tuple[str, ...] = tuple(_CHANNEL_LAYOUTS) + ("retinotopic", "reset")


def place(layout: str, shape: tuple[int, ...], **params: Any) -> Placement:
    """Place the units of a layer whose per-stimulus output has ``shape``.

    Parameters
    ----------
    layout : one of :data:`LAYOUTS`
    shape : (C, H, W) for a conv layer, (F,) for a dense layer
    **params : passed to the layout function (``size_mm``, ``scale_mm``,
        ``spacing_mm``, ``seed``, ``jitter``, ``n_subnets``, ``grid``).

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
    if layout == "square_grid" and len(shape) == 1:
        side = math.isqrt(n_channels - 1) + 1 if n_channels > 1 else 1
        row, col = np.divmod(np.arange(n_channels), side)
        return Placement(pos, np.arange(n_channels), row, col, "channel", layout, dict(params))
    return Placement(pos, np.arange(n_channels), minus, minus.copy(), "channel", layout, dict(params))


def resolve_layout_params(layout: str, area: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Fill in the default sheet size for an area (retinotopic layouts only)."""
    out = dict(params or {})
    if layout == "retinotopic" and "size_mm" not in out:
        out["size_mm"] = DEFAULT_SHEET_MM.get(area, 10.0)
    return out
