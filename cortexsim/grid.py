"""Regular mm grids for per-unit maps: the one raster routine of cortexsim.

Every map that leaves the unit level — ``ds.cortex.map``, the patch and pinwheel
analyses, the figures, NIfTI export and the brain-map comparison — goes through
:func:`rasterize` / :class:`Grid`, so they all agree on one convention:

* pixel (voxel) centres lie at ``origin_mm + k · resolution_mm`` (k = 0, 1, …) on
  each axis; pixel k spans ``[centre − res/2, centre + res/2)``, so every unit
  falls in exactly one pixel (``k = floor((p − origin) / res + 1/2)``);
* by default ``origin_mm`` is the smallest unit coordinate on each axis and the
  grid is just large enough to hold every unit, so a regular sheet rasterised at
  its own spacing maps one unit per pixel;
* images are DataArrays with dims ``(y_mm, x_mm)`` (``(z_mm, y_mm, x_mm)`` in 3-D),
  i.e. row = y, as matplotlib's ``imshow(origin="lower")`` expects, while the
  affine follows NIfTI: it maps the index vector ``(i, j, k, 1)`` with ``i`` along
  x, ``j`` along y, ``k`` along z to mm. A flat sheet lies in the plane z = 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from scipy import ndimage
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


# ---------------------------------------------------------------------- binning


def bin_units(values: np.ndarray, flat: np.ndarray, size: int, statistic: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """Combine per-unit values by pixel.

    Parameters
    ----------
    values : ndarray (n,), float or complex (complex: mean / sum only)
    flat : ndarray (n,) of int, the pixel of each unit (``Grid.flat_index``; -1 = outside, skipped)
    size : int, number of pixels
    statistic : one of :data:`STATISTICS`

    Returns
    -------
    image : ndarray (size,), NaN where no finite value falls (``count``: 0 there)
    count : ndarray (size,) of int, finite values per pixel (``count``: all units)
    """
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}; got {statistic!r}.")
    v = np.asarray(values)
    if v.dtype.kind not in "biufc":
        raise SheetError(
            f"cannot rasterise values of dtype {v.dtype}; encode labels as integers first "
            f"(cortexsim.export.encode_labels) and use statistic='mode'."
        )
    inside = flat >= 0
    if statistic == "count":
        count = np.bincount(flat[inside], minlength=size)
        return count.astype(float), count
    complex_ = np.iscomplexobj(v)
    if complex_ and statistic not in ("mean", "sum"):
        raise ValueError(f"complex values can only be combined by 'mean' or 'sum'; got {statistic!r}.")
    ok = inside & np.isfinite(v)
    f, v = flat[ok], v[ok]
    count = np.bincount(f, minlength=size)
    empty = count == 0
    if statistic in ("mean", "sum", "std"):
        def total(w: np.ndarray) -> np.ndarray:
            if np.iscomplexobj(w):
                return np.bincount(f, w.real, size) + 1j * np.bincount(f, w.imag, size)
            return np.bincount(f, w.astype(float), size)

        s = total(v)
        with np.errstate(invalid="ignore", divide="ignore"):
            if statistic == "sum":
                out = s
            elif statistic == "mean":
                out = s / count
            else:  # population std from a shifted second moment (pixel mean first: stable)
                mean = s / np.maximum(count, 1)
                out = np.sqrt(np.bincount(f, (v - mean[f]) ** 2, size) / count)
    elif statistic in ("min", "max"):
        out = np.full(size, np.inf if statistic == "min" else -np.inf)
        (np.fmin if statistic == "min" else np.fmax).at(out, f, v.astype(float))
    elif statistic == "median":
        order = np.lexsort((v, f))
        fs, vs = f[order], v[order].astype(float)
        start = np.searchsorted(fs, np.arange(size))
        n = count
        lo_i = np.clip(start + (n - 1) // 2, 0, max(len(vs) - 1, 0))
        hi_i = np.clip(start + n // 2, 0, max(len(vs) - 1, 0))
        out = 0.5 * (vs[lo_i] + vs[hi_i]) if len(vs) else np.full(size, np.nan)
    else:  # mode: the most frequent value per pixel, ties to the smallest
        pairs, n_pairs = np.unique(np.stack([f, v.astype(float)], axis=1), axis=0, return_counts=True)
        order = np.lexsort((pairs[:, 1], -n_pairs, pairs[:, 0]))
        first = order[np.r_[True, np.diff(pairs[order, 0]) != 0]] if len(order) else order
        out = np.full(size, np.nan)
        out[pairs[first, 0].astype(np.int64)] = pairs[first, 1]
    out = np.asarray(out, dtype=complex if complex_ else float)
    out[empty] = np.nan
    return out, count


def rasterize(
    values: Any,
    positions: Any = None,
    *,
    resolution_mm: float | None = None,
    statistic: str = "mean",
    origin_mm: Any = None,
    grid: Grid | None = None,
    ndim: int | None = None,
    name: str | None = None,
) -> xr.DataArray:
    """Put a per-unit map on a regular mm grid.

    Parameters
    ----------
    values : DataArray (unit,) with x_mm / y_mm[/ z_mm] coords, or ndarray (n_units,)
        One value per unit (float, int, or complex for ``mean``/``sum``); NaN units are ignored.
    positions : ndarray (n_units, 2 | 3) or Dataset/DataArray with position coords, optional
        Needed when ``values`` carries no positions.
    resolution_mm : float, optional
        Pixel size. Default: the median nearest-neighbour distance between units,
        so a regular sheet maps one unit per pixel.
    statistic : {"mean", "median", "sum", "count", "min", "max", "std", "mode"}
        How units falling in one pixel are combined (``std``: population SD;
        ``mode``: most frequent value, e.g. integer labels; ``count``: all units).
    origin_mm : sequence of float, optional
        A point that is a pixel centre (default: the smallest unit coordinate per axis).
    grid : Grid, optional
        Use exactly this grid (units outside it are left out; ``n_outside`` in attrs).
    ndim : {2, 3}, optional
        2 maps 3-D layouts onto their x–y plane; default 3 when positions have z.
    name : str, optional
        Name of the result (default: the input's name).

    Returns
    -------
    DataArray, dims ``(y_mm, x_mm)`` (or ``(z_mm, y_mm, x_mm)``), pixel-centre coords in mm,
    NaN where no unit falls. attrs: ``resolution_mm``, ``affine`` (4×4, pixel index
    (i, j, k) → mm), ``statistic``, ``n_units`` (units placed), ``n_outside``, and the
    input's ``units`` / ``long_name``.
    """
    v, pos = _values_and_positions(values, positions, ndim)
    if grid is None:
        grid = Grid.covering(pos, resolution_mm, origin_mm)
    elif pos.shape[1] < grid.ndim:
        raise SheetError(f"a {grid.ndim}-D grid needs {grid.ndim}-D positions; these have {pos.shape[1]}.")
    flat = grid.flat_index(pos)
    img, _ = bin_units(v, flat, grid.size, statistic)
    src = getattr(values, "attrs", {}) or {}
    keep = {k: src[k] for k in ("units", "long_name") if k in src}
    return grid.dataarray(
        img, name if name is not None else getattr(values, "name", None), statistic=statistic,
        n_units=int((flat >= 0).sum()), n_outside=int((flat < 0).sum()), **keep,
    )


def sample(image: xr.DataArray, positions: Any) -> np.ndarray:
    """Value of the pixel holding each position (nearest pixel centre); NaN outside the image.

    The inverse of :func:`rasterize` for reading a map back at unit positions.
    """
    grid = Grid.of(image)
    flat = grid.flat_index(unit_positions(positions, grid.ndim))
    data = np.asarray(image.transpose(*grid.dims).values).ravel()
    out = np.full(len(flat), np.nan, dtype=np.result_type(data.dtype, float))
    out[flat >= 0] = data[flat[flat >= 0]]
    return out


# ---------------------------------------------------------------------- smoothing and resampling


def smooth_nan(image: np.ndarray, sigma_px: float, axes: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """NaN-aware Gaussian smoothing (normalised convolution) along ``axes``.

    Returns ``(G*(v·m) / G*m, G*m)`` with ``m`` the finite-pixel mask: each output
    pixel is the Gaussian-weighted mean of the defined pixels around it, so empty
    pixels and the sheet's edge do not pull values towards zero. The second array
    (the local weight) lets callers decide where the result is defined. Leading
    axes not in ``axes`` (e.g. stimuli) are smoothed independently.
    """
    img = np.asarray(image, dtype=float)
    axes = tuple(range(img.ndim)) if axes is None else tuple(axes)
    sigma = [float(sigma_px) if a in axes else 0.0 for a in range(img.ndim)]
    mask = np.isfinite(img)
    num = ndimage.gaussian_filter(np.where(mask, img, 0.0), sigma, mode="constant")
    den = ndimage.gaussian_filter(mask.astype(float), sigma, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[den <= 1e-12] = np.nan
    return out, den


def sheet_mask(positions: np.ndarray, points: np.ndarray, mask: Any = "distance", distance_mm: float | None = None,
               spacing_mm: float | None = None, grid_mm: float = 0.0) -> np.ndarray:
    """Which ``points`` lie on the sheet spanned by ``positions`` (bool, one per point).

    ``"distance"``: within ``distance_mm`` of a unit; default ``√d / 2 · max(s,
    grid_mm) + s`` with ``s`` the unit spacing, i.e. every pixel that
    holds a unit and every point of the sheet's footprint (``s`` from
    :func:`unit_spacing`; the random gaps of an irregular sheet are bridged,
    holes a few spacings wide stay empty).
    ``"hull"``: inside the convex hull of the units. ``None``: all.
    """
    if mask is None:
        return np.ones(len(points), dtype=bool)
    if mask == "distance":
        d = positions.shape[1]
        if distance_mm is None:
            spacing = unit_spacing(positions) if spacing_mm is None else spacing_mm
            distance_mm = (np.sqrt(d) / 2 * max(spacing, grid_mm) + spacing) * (1 + 1e-9)
        dist, _ = cKDTree(positions).query(points, k=1, distance_upper_bound=distance_mm)
        return np.isfinite(dist)
    if mask == "hull":
        from scipy.spatial import ConvexHull, QhullError

        try:
            hull = ConvexHull(positions)
        except QhullError as exc:
            raise SheetError(f"the units span no {positions.shape[1]}-D hull (collinear or too few); use mask='distance'.") from exc
        # inside = on the inner side of every facet plane (normal · p + offset <= 0)
        scale = float(np.ptp(positions, axis=0).max()) or 1.0
        return np.all(points @ hull.equations[:, :-1].T + hull.equations[:, -1] <= 1e-9 * scale, axis=1)
    raise ValueError(f"mask must be 'distance', 'hull' or None; got {mask!r}.")


def one_blas_thread():
    """Context: BLAS on one thread, for the many tiny LAPACK solves of scipy.spatial.

    ``Delaunay.transform`` (used by ``find_simplex`` and ``LinearNDInterpolator``)
    solves one d×d system per simplex; with OpenBLAS threads on a busy 2-core
    machine those took 5-40 s instead of 0.02 s for 8,000 triangles here.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def resample(
    values: np.ndarray,
    positions: np.ndarray,
    grid: Grid,
    method: str = "nearest",
    *,
    fwhm_mm: float | None = None,
    mask: Any = "distance",
    mask_distance_mm: float | None = None,
) -> np.ndarray:
    """Resample scattered per-unit values onto the centres of ``grid``.

    Parameters
    ----------
    values : ndarray (n_units,) or (n_units, n_maps)
    positions : ndarray (n_units, grid.ndim), mm
    grid : Grid
    method : {"nearest", "linear", "gaussian", "mean"}
        ``nearest``: a pixel holding units takes the one nearest its centre, an empty
        pixel the nearest unit anywhere (labels stay labels);
        ``linear``: barycentric interpolation on the Delaunay triangulation of the units;
        ``gaussian``: Gaussian-weighted mean of the units within 3σ of the centre
        (FWHM ``fwhm_mm``, default the pixel size); ``mean``: average of the units
        inside each pixel (:func:`rasterize`).
    mask : {"distance", "hull", None} or bool ndarray (grid.size,)
        Pixels off the sheet become NaN (see :func:`sheet_mask`).

    Returns
    -------
    ndarray (grid.size,) or (grid.size, n_maps) in the flat (C) order of the image.
    """
    if method not in RESAMPLING:
        raise ValueError(f"method must be one of {RESAMPLING}; got {method!r}.")
    v = np.asarray(values, dtype=float)
    squeeze = v.ndim == 1
    v = v[:, None] if squeeze else v
    pos = np.asarray(positions, dtype=float)[:, : grid.ndim]
    centres = grid.centres()
    ok = np.isfinite(v).all(axis=1)
    if not ok.any():
        raise SheetError("every value of the map is NaN; nothing to resample.")
    pos_ok, v_ok = pos[ok], v[ok]
    if method == "nearest":
        # A pixel holding units takes the one nearest its centre (so it holds that unit's value even
        # when a unit of the next pixel is closer); an empty pixel takes the nearest unit anywhere.
        flat = grid.flat_index(pos_ok)
        inside = np.flatnonzero(flat >= 0)
        dist = np.linalg.norm(pos_ok[inside] - centres[flat[inside]], axis=1)
        order = inside[np.lexsort((dist, flat[inside]))]
        first = order[np.r_[True, np.diff(flat[order]) != 0]] if len(order) else order
        idx = np.full(grid.size, -1, dtype=np.int64)
        idx[flat[first]] = first
        empty = np.flatnonzero(idx < 0)
        if empty.size:
            idx[empty] = cKDTree(pos_ok).query(centres[empty], k=1)[1]
        out = v_ok[idx]
    elif method == "mean":
        flat = grid.flat_index(pos_ok)
        out = np.stack([bin_units(v_ok[:, m], flat, grid.size, "mean")[0] for m in range(v.shape[1])], axis=1)
    elif method == "linear":
        from scipy.spatial import Delaunay, QhullError

        with one_blas_thread():
            try:
                tri = Delaunay(pos_ok)
            except QhullError as exc:
                raise SheetError("linear resampling needs units that span an area (not a line); "
                                 "use method='nearest'.") from exc
            simplex = tri.find_simplex(centres)
            found = np.maximum(simplex, 0)
            t = tri.transform[found]  # (size, d + 1, d): barycentric transforms
        b = np.einsum("nij,nj->ni", t[:, : grid.ndim], centres - t[:, grid.ndim])
        weights = np.c_[b, 1.0 - b.sum(axis=1)]
        out = np.einsum("nk,nkm->nm", weights, v_ok[tri.simplices[found]])
        out[simplex < 0] = np.nan
    else:
        fwhm = grid.resolution_mm if fwhm_mm is None else float(fwhm_mm)
        if not fwhm > 0:
            raise ValueError(f"fwhm_mm must be > 0 mm for gaussian resampling; got {fwhm_mm}.")
        sigma = fwhm / FWHM_PER_SIGMA
        pairs = cKDTree(centres).sparse_distance_matrix(cKDTree(pos_ok), 3 * sigma, output_type="coo_matrix")
        w = np.exp(-0.5 * (pairs.data / sigma) ** 2)  # coo keeps zero distances (unit on a centre)
        rows, cols = pairs.row, pairs.col
        den = np.bincount(rows, w, grid.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.stack([np.bincount(rows, w * v_ok[cols, m], grid.size) for m in range(v.shape[1])], axis=1) / den[:, None]
    if isinstance(mask, np.ndarray):
        inside = np.asarray(mask, dtype=bool).ravel()
        if inside.shape != (grid.size,):
            raise SheetError(f"a mask array must hold one bool per pixel ({grid.size}); got shape {mask.shape}.")
    else:
        inside = sheet_mask(pos_ok, centres, mask, mask_distance_mm, grid_mm=grid.resolution_mm)
    out = np.array(out, dtype=float)
    out[~inside] = np.nan
    return out[:, 0] if squeeze else out
