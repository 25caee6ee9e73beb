"""Private helpers of the spatial analyses: per-unit inputs and regular mm grids.

Smoothness, Moran's I, pinwheels and patches all start from "one value per unit
plus the unit's position in mm"; pinwheels and patches then need that value on a
regular grid. Both steps live here so the analyses agree on conventions:

* the grid is :class:`cortexsim.grid.Grid` and binning is :func:`cortexsim.grid.bin_units`
  — the package's one raster routine, shared with ``ds.cortex.map``, the figures
  and export: a pixel of size ``resolution_mm`` is centred on ``lo + k·resolution_mm``
  where ``lo`` is the smallest unit coordinate, and every unit falls in exactly
  one pixel (a regular sheet maps one unit per pixel at its own spacing);
* the default resolution is the median nearest-neighbour distance between units.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from scipy import ndimage

from ..errors import ParameterError, SheetError
from ..grid import Grid, bin_units, default_resolution, resample, smooth_nan, unit_positions


def select_area(ds: xr.Dataset | xr.DataArray, area: str | None) -> xr.Dataset | xr.DataArray:
    """The units of one area; error when several areas are mixed and none is named.

    Positions of different areas are separate sheets, so a spatial statistic that
    mixes them would measure distances between unrelated maps.
    """
    if "area" not in ds.coords or "unit" not in ds.dims:
        return ds
    names = np.asarray(ds["area"].values).astype(str)
    if area is not None:
        mask = names == area
        if not mask.any():
            raise SheetError(f"no area {area!r}; areas are {sorted(set(names.tolist()))}.")
        return ds.isel(unit=np.flatnonzero(mask))
    present = np.unique(names)
    if len(present) > 1:
        raise SheetError(
            f"the input mixes {len(present)} areas {present.tolist()}; pass area=... "
            f"or select one with ds.cortex.area(name)."
        )
    return ds


def positions_of(obj: Any) -> np.ndarray:
    """Unit positions (n_units, 2) in mm from a Dataset/DataArray's x_mm/y_mm coords or an array."""
    if not isinstance(obj, (xr.Dataset, xr.DataArray)):
        pos = np.asarray(obj, dtype=float)
        if pos.ndim != 2 or pos.shape[1] < 2:
            raise SheetError(f"positions must have shape (n_units, 2) in mm; got {pos.shape}.")
        obj = pos[:, :2]
    return unit_positions(obj, ndim=2)


def unit_values(values: Any, name: str = "values") -> np.ndarray:
    """A per-unit DataArray/array as a 1-D float ndarray (computed if dask-backed)."""
    if isinstance(values, xr.DataArray):
        if values.dims != ("unit",):
            raise SheetError(
                f"{name} must be a per-unit DataArray with dims ('unit',); got dims {values.dims}. "
                f"Select one map first (e.g. .sel(category=...))."
            )
        v = np.asarray(values.values, dtype=float)
    else:
        v = np.asarray(values, dtype=float)
        if v.ndim != 1:
            raise SheetError(f"{name} must be 1-D (one value per unit); got shape {v.shape}.")
    return v


def grid_axes(pos: np.ndarray, resolution_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (x, y) in mm of the grid covering ``pos``."""
    x, y = Grid.covering(pos, resolution_mm).axes()
    return x, y


def bin_to_grid(
    values: np.ndarray, pos: np.ndarray, x: np.ndarray, y: np.ndarray, resolution_mm: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the finite ``values`` falling in each pixel; returns (image (ny, nx), count (ny, nx)).

    Values may be complex (the orientation field). Pixels without a unit are NaN.
    """
    grid = Grid((float(x[0]), float(y[0])), float(resolution_mm), (len(x), len(y)))
    img, count = bin_units(values, grid.flat_index(pos), grid.size, "mean")
    return img.reshape(grid.array_shape), count.reshape(grid.array_shape).astype(float)


def to_grid(
    values: np.ndarray, pos: np.ndarray, resolution_mm: float | None = None, method: str = "auto"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, str]:
    """Resample per-unit values onto a regular grid.

    Parameters
    ----------
    values : ndarray (n_units,), float or complex
    pos : ndarray (n_units, 2), mm
    resolution_mm : float, optional
        Pixel size; default :func:`default_resolution`.
    method : {"auto", "bin", "linear", "nearest"}
        ``"bin"`` averages units per pixel (exact for regular sheets);
        ``"linear"``/``"nearest"`` use ``scipy.interpolate.griddata`` (NaN outside
        the convex hull for linear). ``"auto"`` bins when every pixel inside the
        sheet's footprint holds a unit, else interpolates linearly.

    Returns
    -------
    image : ndarray (ny, nx), NaN where undefined
    x, y : ndarray (nx,), (ny,) pixel centres in mm
    resolution_mm : float
    method : str, the method actually used
    """
    if method not in ("auto", "bin", "linear", "nearest"):
        raise ParameterError(f"method must be 'auto', 'bin', 'linear' or 'nearest'; got {method!r}.")
    res = default_resolution(pos) if resolution_mm is None else float(resolution_mm)
    x, y = grid_axes(pos, res)
    if method in ("auto", "bin"):
        img, count = bin_to_grid(values, pos, x, y, res)
        holes = ndimage.binary_fill_holes(count > 0) & (count == 0)
        if method == "bin" or not holes.any():
            return img, x, y, res, "bin"
    ok = np.isfinite(values)
    gx, gy = np.meshgrid(x, y)
    method = "linear" if method == "auto" else method
    v = values[ok]
    parts = np.c_[v.real, v.imag] if np.iscomplexobj(v) else v[:, None].astype(float)
    if method == "linear":  # barycentric on the Delaunay triangulation, NaN outside the hull
        grid = Grid((float(x[0]), float(y[0])), res, (len(x), len(y)))
        out = resample(parts, pos[ok], grid, "linear", mask=None).reshape(grid.array_shape + (parts.shape[1],))
    else:
        from scipy.interpolate import griddata

        out = griddata(pos[ok], parts, (gx, gy), method="nearest")
    img = out[..., 0] + 1j * out[..., 1] if np.iscomplexobj(v) else out[..., 0]
    return img, x, y, res, method


def nan_gaussian(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian smoothing that ignores NaN pixels (normalised convolution).

    ``G*(v·m) / G*m`` with ``m`` the finite-pixel mask: each output pixel is the
    Gaussian-weighted mean of the defined pixels around it, so the sheet's edge
    and empty pixels do not pull values towards zero. Pixels that were NaN stay
    NaN unless they are holes enclosed by the sheet (then they are filled).
    """
    mask = np.isfinite(img)
    if sigma_px <= 0:
        return img.copy()
    out, den = smooth_nan(img, sigma_px)
    out[~ndimage.binary_fill_holes(mask) | (den <= 1e-12)] = np.nan
    return out


def grid_dataarray(img: np.ndarray, x: np.ndarray, y: np.ndarray, name: str, **attrs: Any) -> xr.DataArray:
    """Wrap a (ny, nx) image as a DataArray with mm coords (and the grid's affine when its step is known)."""
    steps = np.concatenate([np.diff(x), np.diff(y)])
    if steps.size:
        return Grid((float(x[0]), float(y[0])), float(steps[0]), (len(x), len(y))).dataarray(img, name, **attrs)
    return xr.DataArray(
        img,
        dims=("y_mm", "x_mm"),
        coords={"y_mm": ("y_mm", y, {"units": "mm"}), "x_mm": ("x_mm", x, {"units": "mm"})},
        name=name,
        attrs=attrs,
    )


def from_grid_dataarray(da: xr.DataArray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(image, x, y, resolution) from a (y_mm, x_mm) DataArray with evenly spaced coords."""
    if set(da.dims) != {"y_mm", "x_mm"}:
        raise SheetError(f"a map image must have dims ('y_mm', 'x_mm'); got {da.dims}.")
    da = da.transpose("y_mm", "x_mm")
    x, y = np.asarray(da["x_mm"].values, float), np.asarray(da["y_mm"].values, float)
    steps = np.concatenate([np.diff(x), np.diff(y)])
    if steps.size == 0 or not np.allclose(steps, steps[0], rtol=1e-6):
        raise SheetError("map image coords x_mm / y_mm must be evenly spaced with the same step in mm.")
    return np.asarray(da.values), x, y, float(abs(steps[0]))
