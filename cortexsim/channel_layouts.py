"""Channel-level layouts: one position (mm) per channel of a layer.

Poli, Dupoux & Riad (2023): :func:`grid2d`, :func:`nested_grid`, :func:`circle`, :func:`grid3d`,
:func:`sphere`, :func:`nested3d`; :func:`square_grid` for a dense layer (Truong & Hasson's 11×11
grid), :func:`reset_tiling` (Hannagan's Reset grid) and :func:`topoloss_sheet` (Deb et al.'s
h × w TopoLoss sheet). Each is a pure function ``name(n_channels, **params) -> (n, 2 | 3)``;
:func:`cortexsim.layout.place` picks them up from ``cortexsim.layout._CHANNEL_LAYOUTS``, and every
name here is re-exported by :mod:`cortexsim.layout`.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import LayoutError

#: Layout variants: the reference implementations' exact positions, or cortexsim's earlier ones.
VARIANTS: tuple[str, ...] = ("reference", "cortexsim")


def _check_n(n: int, name: str = "n") -> int:
    if int(n) != n or n < 1:
        raise LayoutError(f"{name} must be a positive integer; got {n!r}.")
    return int(n)


def _check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise LayoutError(f"variant must be one of {VARIANTS}; got {variant!r}.")
    return variant


def _axis(n: int, dim: int) -> int:
    # bootphon/topography's points per axis: ceil(n^(1/dim)) in floating point
    return int(math.ceil(n ** (1 / dim)))


# --------------------------------------------------------------------------- channel level
#
# ``variant="reference"`` (default) reproduces bootphon/topography (Poli, Dupoux & Riad's code,
# ``topography/core/distance.py``) position for position; ``variant="cortexsim"`` keeps the
# layouts cortexsim used before (grid spacing 1/N, unit circle/sphere, nested shells from the
# centre outwards).


def grid2d(n: int, scale_mm: float = 1.0, *, variant: str = "reference") -> np.ndarray:
    """2-D grid of n channels (bootphon ``hypercube(n, 2)``).

    Channel i (0-based) sits at column i mod N, row i // N, N = ⌈√n⌉; the reference spaces
    the N columns over [0, 1] inclusive (spacing 1/(N−1): ``linspace(0, 1, N)``), the
    ``"cortexsim"`` variant over [0, 1) (spacing 1/N).

    Returns
    -------
    ndarray, shape (n, 2), in mm (unit coordinates times ``scale_mm``).
    """
    n = _check_n(n)
    if _check_variant(variant) == "cortexsim":
        side = math.isqrt(n - 1) + 1 if n > 1 else 1
        q, r = np.divmod(np.arange(n), side)
        return np.stack([r / side, q / side], axis=1) * scale_mm
    side = _axis(n, 2)
    q, r = np.divmod(np.arange(n), side)
    return np.stack([r, q], axis=1) / max(side - 1, 1) * scale_mm


def grid3d(n: int, scale_mm: float = 1.0, *, variant: str = "reference") -> np.ndarray:
    """3-D grid of n channels (bootphon ``hypercube(n, 3)``), N = ⌈n^(1/3)⌉ points per axis.

    Reference order (``meshgrid(..., indexing="xy")``): channel m at
    (x, y, z) = ((m // N) mod N, m // N², m mod N) / (N − 1), coordinates in [0, 1].
    ``"cortexsim"``: (m mod N, (m // N) mod N, m // N²) / N.

    Returns ndarray (n, 3) in mm.
    """
    n = _check_n(n)
    idx = np.arange(n)
    if _check_variant(variant) == "cortexsim":
        side = 1
        while side**3 < n:
            side += 1
        a, b, c = idx % side, (idx // side) % side, idx // side**2
        return np.stack([a, b, c], axis=1) / side * scale_mm
    side = _axis(n, 3)
    return np.stack([(idx // side) % side, idx // side**2, idx % side], axis=1) / max(side - 1, 1) * scale_mm


def circle(n: int, scale_mm: float = 1.0, *, variant: str = "reference") -> np.ndarray:
    """Channels regularly on a circle (bootphon ``hypersphere(n, 2)``).

    Reference: channel t (0-based) at 0.5·(cos 2πt/n, sin 2πt/n) — radius 0.5, centred on 0,
    neighbours 2·0.5·sin(π/n) apart. ``"cortexsim"``: radius 1, channel t at angle 2π(t+1)/n.

    Returns ndarray (n, 2) in mm.
    """
    n = _check_n(n)
    if _check_variant(variant) == "cortexsim":
        angle = 2 * np.pi * np.arange(1, n + 1) / n
        return np.stack([np.cos(angle), np.sin(angle)], axis=1) * scale_mm
    angle = 2 * np.pi / n * np.arange(n)
    return 0.5 * np.stack([np.cos(angle), np.sin(angle)], axis=1) * scale_mm


def sphere(n: int, scale_mm: float = 1.0, *, variant: str = "reference") -> np.ndarray:
    """Channels spread regularly on a sphere (bootphon ``hypersphere(n, 3)``, Fibonacci lattice).

    Reference: y_t = 1 − 2t/(n−1) from pole to pole, θ_t = t·π(3 − √5) (the golden angle),
    position 0.5·(cos θ_t·ρ_t, y_t, sin θ_t·ρ_t) with ρ_t = √(1 − y_t²): radius 0.5, channels 0
    and n−1 at the poles (a single channel sits at the north pole). ``"cortexsim"``: the
    offset spiral z_t = 1 − 2(t + ½)/n on the unit sphere.

    Returns ndarray (n, 3) in mm.
    """
    n = _check_n(n)
    if _check_variant(variant) == "cortexsim":
        i = np.arange(n) + 0.5
        z = 1 - 2 * i / n
        rho = np.sqrt(1 - z**2)
        theta = np.pi * (1 + 5**0.5) * i
        return np.stack([rho * np.cos(theta), rho * np.sin(theta), z], axis=1) * scale_mm
    t = np.arange(n, dtype=float)
    y = 1 - 2 * t / (n - 1) if n > 1 else np.ones(1)
    rho = np.sqrt(np.clip(1 - y**2, 0.0, None))
    theta = np.pi * (3.0 - math.sqrt(5.0)) * t
    return 0.5 * np.stack([np.cos(theta) * rho, y, np.sin(theta) * rho], axis=1) * scale_mm


def _nested_cortexsim(n: int, dim: int) -> np.ndarray:
    # Shells k = 1..K of half-width k/(2K) around the centre, each holding the same
    # points (vertices + edge midpoints), so density is highest in the middle.
    offsets = np.array(np.meshgrid(*[[-1, 0, 1]] * dim, indexing="ij")).reshape(dim, -1).T
    n_zero = (offsets == 0).sum(axis=1)
    shell = offsets[(n_zero <= 1) & (n_zero < dim)]  # vertices and edge midpoints
    n_shells = max(1, math.ceil((n - 1) / len(shell)))
    pts = [np.zeros((1, dim))]
    for k in range(1, n_shells + 1):
        pts.append(shell * k / (2 * n_shells))
    return np.concatenate(pts)[:n] + 0.5


def _nested_reference(n: int, dim: int) -> np.ndarray:
    # bootphon ``nested(n, dim)``: the unit square/cube first, then each next one shrunk by half
    # about the centre. Each holds its vertices and edge midpoints (2^d + d·2^(d−1) points),
    # listed with x fastest. Computed in float32 like the reference (torch default dtype), so the
    # same positions coincide once the squares are smaller than float32 resolution.
    pick = np.array(np.meshgrid(*[[0, 1, 2]] * dim, indexing="ij")).reshape(dim, -1).T[:, ::-1]  # x fastest
    pick = pick[(pick == 1).sum(axis=1) <= 1]  # at most one coordinate at an edge midpoint
    per_square = len(pick)
    lo, hi = np.zeros(dim, np.float32), np.ones(dim, np.float32)
    half, shrink = np.float32(2), np.float32(0.5 * 0.5)  # (1 − nested_factor) / 2 with factor ½
    squares = []
    for _ in range(-(-n // per_square)):  # a loop over the few nested squares, not channels
        mid = lo + (hi - lo) / half
        values = np.stack([lo, mid, hi])  # (3, dim)
        squares.append(values[pick, np.arange(dim)])
        step = (hi - lo) * shrink
        lo, hi = lo + step, hi - step
    return np.concatenate(squares)[:n].astype(np.float64)


def nested_grid(n: int, scale_mm: float = 1.0, *, variant: str = "reference") -> np.ndarray:
    """Poli et al.'s nested grid (bootphon ``nested(n, 2)``), in [0, 1]².

    Reference: the unit square's 4 vertices and 4 edge midpoints first, then the same 8 points
    on a square half as wide about the centre, and so on inwards (density grows towards the
    centre). In float32, as the reference computes it, squares narrower than float32 resolution
    repeat positions: from 195 channels on some channels coincide (d = 0, so 1/(d + 1) = 1 —
    harmless for the channel loss, but such channels share one point on the sheet). The
    reference's distances meet d = 0 earlier: ``torch.cdist`` in float32 takes its matrix-product
    form (|x|² + |y|² − 2x·y) above 25 points, which rounds distances below ~3e-4 to 0 — from 100
    channels on (953 of 16,256 ordered pairs at 128, the inner squares). cortexsim computes the
    distances in float64 (:func:`cortexsim.adapters.channel.inverse_distance`), so its 1/(d + 1)
    differs from the reference's by at most 3.5e-4 there.
    ``"cortexsim"``: a centre point, then shells from the centre outwards.

    Returns ndarray (n, 2) in mm.
    """
    n = _check_n(n)
    fn = _nested_cortexsim if _check_variant(variant) == "cortexsim" else _nested_reference
    return fn(n, 2) * scale_mm


def nested3d(n: int, scale_mm: float = 1.0, *, variant: str = "reference") -> np.ndarray:
    """3-D nested grid (bootphon ``nested(n, 3)``): cubes with their 8 vertices and 12 edge
    midpoints (20 per cube), the unit cube first, each next one half as wide; in [0, 1]³.
    Coincident positions (float32) appear from 483 channels on. ``"cortexsim"``: centre first.

    Returns ndarray (n, 3) in mm.
    """
    n = _check_n(n)
    fn = _nested_cortexsim if _check_variant(variant) == "cortexsim" else _nested_reference
    return fn(n, 3) * scale_mm


def square_grid(n: int, spacing_mm: float = 1.0) -> np.ndarray:
    """Square grid for a dense layer (Truong & Hasson: 121 units on 11×11), row-major.

    Unit i sits at column i mod S, row i // S with S = ⌈√n⌉; neighbours are
    ``spacing_mm`` apart. Returns ndarray (n, 2) in mm as (x, y) = (col, row)·spacing.
    """
    n = _check_n(n)
    side = math.isqrt(n - 1) + 1 if n > 1 else 1
    row, col = np.divmod(np.arange(n), side)
    return np.stack([col, row], axis=1).astype(float) * spacing_mm


def topoloss_sheet_shape(n: int) -> tuple[int, int]:
    """(height, width) of TopoLoss's cortical sheet for n units: height = the largest divisor of n
    that is ≤ ⌊√n⌋, width = n / height (``topoloss.cortical_sheet.common.find_cortical_sheet_size``)."""
    n = _check_n(n)
    h = math.isqrt(n)
    while n % h:
        h -= 1
    return h, n // h


def topoloss_sheet(n: int, spacing_mm: float = 1.0) -> np.ndarray:
    """Positions of n units on TopoLoss's h × w sheet (Deb et al. 2025), row-major.

    Unit k sits at row k // w, column k mod w (``weight.reshape(h, w, ...)`` in the reference);
    (x, y) = (col, row)·spacing. Returns ndarray (n, 2) in mm.
    """
    _, w = topoloss_sheet_shape(n)
    row, col = np.divmod(np.arange(n), w)
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
