"""Regular mm grids and unit positions: the geometry every per-unit map is rasterised with.

:class:`Grid` fixes the one convention of cortexsim (see :mod:`cortexsim.grid`): pixel centres
at ``origin_mm + k · resolution_mm``, images with dims ``(y_mm, x_mm)`` (``(z_mm, y_mm, x_mm)``),
a NIfTI-style affine. :func:`unit_positions`, :func:`default_resolution` and :func:`unit_spacing`
read positions and the typical unit spacing from a Sheet. Re-exported by :mod:`cortexsim.grid`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from scipy.spatial import cKDTree

from .errors import SheetError
from .seeding import numpy_rng

#: Ways of combining the units that fall in one pixel.
STATISTICS: tuple[str, ...] = ("mean", "median", "sum", "count", "min", "max", "std", "mode")
#: Ways of resampling scattered units onto grid points (:func:`resample`).
RESAMPLING: tuple[str, ...] = ("nearest", "linear", "gaussian", "mean")
#: Largest grid (pixels) any routine builds; protects against a tiny resolution on a big sheet.
MAX_PIXELS = 64_000_000
_AXES = ("x_mm", "y_mm", "z_mm")
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


@dataclass(frozen=True)
class Grid:
    """A regular grid in mm: pixel centres ``origin_mm + index · resolution_mm``.

    Attributes
    ----------
    origin_mm : tuple of float, (x, y[, z])
        Centre of the pixel with index 0 on every axis.
    resolution_mm : float
        Pixel (voxel) edge length.
    shape : tuple of int, (nx, ny[, nz])
        Number of pixels along x, y[, z] (index order, not array order).
    """

    origin_mm: tuple[float, ...]
    resolution_mm: float
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if not (np.isfinite(self.resolution_mm) and self.resolution_mm > 0):
            raise ValueError(f"resolution_mm must be a positive number of mm; got {self.resolution_mm}.")
        if len(self.origin_mm) != len(self.shape) or len(self.shape) not in (2, 3):
            raise ValueError(f"a grid is 2-D or 3-D; got origin {self.origin_mm} and shape {self.shape}.")
        size = int(np.prod(np.asarray(self.shape, dtype=np.int64)))
        if size > MAX_PIXELS:
            raise ValueError(
                f"a grid of {' × '.join(map(str, self.shape))} pixels at {self.resolution_mm:g} mm is too large "
                f"(> {MAX_PIXELS:,}); pass a coarser resolution_mm."
            )

    # ------------------------------------------------------------------ construction

    @classmethod
    def covering(
        cls, positions: np.ndarray, resolution_mm: float | None = None, origin_mm: Any = None, margin_mm: float = 0.0
    ) -> Grid:
        """The smallest grid holding every position.

        Parameters
        ----------
        positions : ndarray (n, 2 | 3), mm
        resolution_mm : float, optional
            Default :func:`default_resolution` (median nearest-neighbour distance).
        origin_mm : sequence of float, optional
            A point that is a pixel centre (fixes the lattice's phase). Default:
            the smallest coordinate on each axis minus ``margin_mm``.
        margin_mm : float
            Extra border around the positions on every side.
        """
        pos = np.asarray(positions, dtype=float)
        res = default_resolution(pos) if resolution_mm is None else float(resolution_mm)
        if not (np.isfinite(res) and res > 0):
            raise ValueError(f"resolution_mm must be a positive number of mm; got {resolution_mm}.")
        lo, hi = pos.min(axis=0) - margin_mm, pos.max(axis=0) + margin_mm
        if origin_mm is not None:
            anchor = np.asarray(origin_mm, dtype=float)
            if anchor.shape != lo.shape:
                raise ValueError(f"origin_mm needs {lo.size} coordinates (x, y[, z]); got {anchor.tolist()}.")
            lo = anchor + np.floor((lo - anchor) / res + 0.5) * res
        n = np.floor((hi - lo) / res + 0.5).astype(np.int64) + 1
        return cls(tuple(float(v) for v in lo), res, tuple(int(v) for v in n))

    @classmethod
    def of(cls, image: xr.DataArray) -> Grid:
        """The grid of a raster DataArray (dims ``(y_mm, x_mm)`` or ``(z_mm, y_mm, x_mm)``)."""
        names = [a for a in _AXES if a in image.dims]
        if set(image.dims) != set(names) or len(names) not in (2, 3) or names[:2] != ["x_mm", "y_mm"]:
            raise SheetError(f"a map image must have dims ('y_mm', 'x_mm') or ('z_mm', 'y_mm', 'x_mm'); got {image.dims}.")
        axes = [np.asarray(image[a].values, dtype=float) for a in names]
        steps = np.concatenate([np.diff(a) for a in axes])
        if steps.size == 0:
            res = float(image.attrs.get("resolution_mm", 1.0))
        elif np.allclose(steps, steps[0], rtol=1e-6) and steps[0] > 0:
            res = float(steps[0])
        else:
            raise SheetError("map image coords x_mm / y_mm must be evenly spaced with the same step in mm.")
        return cls(tuple(float(a[0]) for a in axes), res, tuple(len(a) for a in axes))

    @classmethod
    def from_affine(cls, affine: np.ndarray, shape: tuple[int, ...]) -> Grid:
        """The grid of an axis-aligned, isotropic affine (e.g. one written by :mod:`cortexsim.export`)."""
        a = np.asarray(affine, dtype=float)
        d = len(shape)
        lin = a[:d, :d]
        res = float(lin[0, 0])
        if not np.allclose(lin, np.eye(d) * res, atol=1e-6 * abs(res)) or res <= 0:
            raise ValueError("the affine is not an axis-aligned isotropic scaling; resample the map first.")
        return cls(tuple(float(v) for v in a[:d, 3]), res, tuple(int(s) for s in shape))

    # ------------------------------------------------------------------ geometry

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def dims(self) -> tuple[str, ...]:
        """DataArray dims in array order: ``("y_mm", "x_mm")`` or ``("z_mm", "y_mm", "x_mm")``."""
        return tuple(reversed(_AXES[: self.ndim]))

    @property
    def array_shape(self) -> tuple[int, ...]:
        """Shape of the image array (array order, reversed index order)."""
        return tuple(reversed(self.shape))

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def affine(self) -> np.ndarray:
        """4×4 affine: ``affine @ (i, j, k, 1)`` is the pixel centre in mm (k = 0, z = 0 on a flat grid)."""
        a = np.eye(4) * self.resolution_mm
        a[3, 3] = 1.0
        a[: self.ndim, 3] = self.origin_mm
        return a

    def axes(self) -> list[np.ndarray]:
        """Pixel-centre coordinates along x, y[, z] (mm)."""
        return [o + self.resolution_mm * np.arange(n) for o, n in zip(self.origin_mm, self.shape)]

    def extent(self) -> list[float]:
        """``[x_lo, x_hi, y_lo, y_hi]`` of the pixel edges, for ``imshow(extent=..., origin="lower")``."""
        half = self.resolution_mm / 2
        x, y = self.axes()[:2]
        return [x[0] - half, x[-1] + half, y[0] - half, y[-1] + half]

    def centres(self) -> np.ndarray:
        """Pixel centres (size, ndim) in mm, in the flat (C) order of the image array."""
        mesh = np.meshgrid(*reversed(self.axes()), indexing="ij")  # array order z, y, x
        return np.stack([m.ravel() for m in reversed(mesh)], axis=1)

    def index(self, positions: np.ndarray) -> np.ndarray:
        """Integer pixel index (n, ndim) along x, y[, z] of each position (may lie outside)."""
        pos = np.asarray(positions, dtype=float)[:, : self.ndim]
        return np.floor((pos - np.asarray(self.origin_mm)) / self.resolution_mm + 0.5).astype(np.int64)

    def flat_index(self, positions: np.ndarray) -> np.ndarray:
        """Flat (C order) index into the image array of each position; -1 outside the grid."""
        idx = self.index(positions)
        inside = np.all((idx >= 0) & (idx < np.asarray(self.shape)), axis=1)
        flat = np.zeros(len(idx), dtype=np.int64)
        stride = 1
        for axis in range(self.ndim):  # x varies fastest in array (C) order
            flat += idx[:, axis] * stride
            stride *= self.shape[axis]
        flat[~inside] = -1
        return flat

    def dataarray(self, image: np.ndarray, name: str | None = None, **attrs: Any) -> xr.DataArray:
        """Wrap an image (array order) as a DataArray with mm coords and this grid's affine."""
        coords = {a: (a, c, {"units": "mm"}) for a, c in zip(_AXES, self.axes())}
        full = {"resolution_mm": float(self.resolution_mm), "affine": self.affine, **attrs}
        return xr.DataArray(np.asarray(image).reshape(self.array_shape), dims=self.dims, coords=coords, name=name, attrs=full)


# ---------------------------------------------------------------------- inputs


def unit_positions(obj: Any, ndim: int | None = None) -> np.ndarray:
    """Unit positions (n, 2 | 3) in mm from x_mm/y_mm[/z_mm] coords or an array.

    ``ndim=None`` keeps z when the object has a ``z_mm`` coord (or 3 columns);
    ``ndim=2`` projects onto the sheet's x–y plane.
    """
    if isinstance(obj, (xr.Dataset, xr.DataArray)):
        missing = [c for c in ("x_mm", "y_mm") if c not in obj.coords]
        if missing:
            raise SheetError(
                f"no unit positions: coords {missing} are missing. Pass a Sheet or a per-unit "
                f"DataArray that keeps the Sheet's unit coords (x_mm, y_mm)."
            )
        names = ["x_mm", "y_mm"] + (["z_mm"] if "z_mm" in obj.coords and ndim != 2 else [])
        pos = np.stack([np.asarray(obj[c].values, dtype=float).ravel() for c in names], axis=1)
    else:
        pos = np.asarray(obj, dtype=float)
        if pos.ndim != 2 or pos.shape[1] not in (2, 3):
            raise SheetError(f"positions must have shape (n_units, 2 | 3) in mm; got {pos.shape}.")
    if ndim is not None:
        if pos.shape[1] < ndim:
            raise SheetError(f"{ndim}-D positions are needed; these have {pos.shape[1]} coordinates.")
        pos = pos[:, :ndim]
    if not np.isfinite(pos).all():
        raise SheetError("unit positions contain NaN/Inf; every unit needs a finite position in mm.")
    return pos


def default_resolution(pos: np.ndarray) -> float:
    """Median nearest-neighbour distance between units (mm); 1.0 for a single unit."""
    pos = np.asarray(pos, dtype=float)
    if len(pos) < 2:
        return 1.0
    # A sample is enough for a median and keeps this cheap on million-unit sheets.
    sample = pos if len(pos) <= 20_000 else pos[numpy_rng(0).choice(len(pos), 20_000, replace=False)]
    d, _ = cKDTree(pos).query(sample, k=2)
    nn = d[:, 1][d[:, 1] > 0]
    return float(np.median(nn)) if nn.size else 1.0


def unit_spacing(pos: np.ndarray) -> float:
    """Typical distance between neighbouring units (mm), robust to clustered layouts.

    The larger of the median nearest-neighbour distance (exact for regular
    sheets) and, for flat sheets, ``sqrt(hull area / n)`` — the spacing the
    units' density implies. Retinotopic sheets place several channels close
    together around each feature-map position: their nearest-neighbour distance
    is half the density spacing, and a voxel that small leaves most voxels empty.
    """
    pos = np.asarray(pos, dtype=float)
    nn = default_resolution(pos)
    if pos.shape[1] != 2 or len(pos) < 3:
        return nn
    from scipy.spatial import ConvexHull, QhullError

    try:
        area = ConvexHull(pos).volume  # the "volume" of a 2-D hull is its area
    except QhullError:
        return nn
    return max(nn, float(np.sqrt(area / len(pos))))


def _values_and_positions(values: Any, positions: Any, ndim: int | None) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(values, xr.DataArray):
        if values.dims != ("unit",):
            raise SheetError(
                f"a map must be a per-unit DataArray with dims ('unit',); got dims {values.dims}. "
                f"Select one map first (e.g. .sel(category=...))."
            )
        v = np.asarray(values.values)
    else:
        v = np.asarray(values)
        if v.ndim != 1:
            raise SheetError(f"a map must be 1-D (one value per unit); got shape {v.shape}.")
    pos = unit_positions(positions if positions is not None else values, ndim)
    if len(pos) != len(v):
        raise SheetError(f"a map needs one value per unit: {len(v)} values but {len(pos)} unit positions.")
    return v, pos
