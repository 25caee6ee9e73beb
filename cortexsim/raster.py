"""Per-unit maps onto a regular mm grid: binning (:func:`bin_units`), :func:`rasterize` and its inverse :func:`sample`.

Re-exported by :mod:`cortexsim.grid` (the grid convention is described there).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .errors import SheetError
from .geometry import STATISTICS, Grid, _values_and_positions, unit_positions


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
