"""Pinwheels of an orientation map: winding-number detection and density per Λ².

The preferred orientation θ (period 180°) is represented by the complex field
z = exp(2iθ), which is smooth where θ is and undefined only at pinwheel centres.
On a regular grid, each 2×2 plaquette's winding number is the sum of the wrapped
phase steps of arg z around it, divided by 2π: ±1 marks a pinwheel (θ turns by
±180° around it), 0 none. The column spacing Λ is the wavelength at the peak of
the radially averaged power spectrum of z, and the pinwheel density is
count / (area / Λ²). Kaschube et al. (2010) measured ≈ π in cat, tree shrew and
galago V1; a Gaussian random field with a ring spectrum has exactly π.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..errors import ParameterTypeError, SheetError, UndefinedStatisticError
from ._params import Interval, Options, fill_doc, validate_params
from ._grid import from_grid_dataarray, grid_dataarray, positions_of, select_area, to_grid, unit_values

#: Variable names under which an orientation-map Dataset may hold the preferred orientation.
ORIENTATION_VARS = ("preferred_orientation", "preferred_orientation_deg", "orientation_deg", "orientation")


def _orientation_input(obj: Any, var: str | None) -> xr.DataArray:
    if isinstance(obj, xr.Dataset):
        names = [var] if var else [n for n in ORIENTATION_VARS if n in obj.data_vars]
        if not names or names[0] not in obj.data_vars:
            hint = " compute it with analysis.orientation_map(ds) first;" if "responses" in obj.data_vars else ""
            raise SheetError(
                f"no preferred-orientation variable found (looked for {list(var and [var] or ORIENTATION_VARS)});"
                f"{hint} or pass var=<name> / the DataArray itself. Variables: {list(obj.data_vars)}."
            )
        return obj[names[0]]
    if isinstance(obj, xr.DataArray):
        return obj
    raise ParameterTypeError(f"pinwheels needs a DataArray or Dataset of preferred orientations; got {type(obj).__name__}.")


def winding_numbers(phase: np.ndarray) -> np.ndarray:
    """Winding number of each 2×2 plaquette of a phase image (radians).

    Parameters
    ----------
    phase : ndarray (ny, nx), rows increasing in y, NaN where undefined

    Returns
    -------
    ndarray (ny-1, nx-1) of float: integer winding numbers (counter-clockwise
    positive with x right and y up), NaN where a corner is NaN.
    """
    c00, c10 = phase[:-1, :-1], phase[:-1, 1:]
    c11, c01 = phase[1:, 1:], phase[1:, :-1]

    def wrap(d: np.ndarray) -> np.ndarray:
        return (d + np.pi) % (2 * np.pi) - np.pi

    total = wrap(c10 - c00) + wrap(c11 - c10) + wrap(c01 - c11) + wrap(c00 - c01)
    return np.round(total / (2 * np.pi))


def radial_spectrum(field: np.ndarray, resolution_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of a (complex) image; NaN pixels count as the mean.

    Returns
    -------
    k : ndarray (n_bins,), spatial frequency (cycles/mm), bin centres from 0
    power : ndarray (n_bins,), mean |FFT|² in each ring
    """
    ok = np.isfinite(field)
    f = np.where(ok, field - field[ok].mean(), 0)
    ny, nx = f.shape
    p = np.abs(np.fft.fft2(f)) ** 2
    kx, ky = np.fft.fftfreq(nx, d=resolution_mm), np.fft.fftfreq(ny, d=resolution_mm)
    k = np.hypot(kx[None, :], ky[:, None])
    dk = 1.0 / (max(nx, ny) * resolution_mm)
    idx = np.rint(k / dk).astype(np.int64).ravel()
    n_bins = int(min(nx, ny) // 2) + 1  # up to the Nyquist frequency of the shorter side
    inside = idx < n_bins
    power = np.bincount(idx[inside], p.ravel()[inside], n_bins) / np.maximum(np.bincount(idx[inside], minlength=n_bins), 1)
    return np.arange(n_bins) * dk, power


def column_spacing(field: np.ndarray, resolution_mm: float) -> float:
    """Column spacing Λ (mm) = 1 / k_peak of the radially averaged spectrum of ``field``.

    k_peak is the power-weighted mean frequency of the contiguous band of rings
    around the maximum (excluding k = 0) whose power is at least half the
    maximum, which is steadier than the arg-max ring alone.
    """
    k, power = radial_spectrum(field, resolution_mm)
    if len(k) < 3 or not np.any(power[1:] > 0):
        raise UndefinedStatisticError("the map is too small or flat to estimate a column spacing; pass column_spacing_mm.")
    peak = 1 + int(np.argmax(power[1:]))
    above = power >= 0.5 * power[peak]
    lo = peak
    while lo > 1 and above[lo - 1]:
        lo -= 1
    hi = peak
    while hi < len(k) - 1 and above[hi + 1]:
        hi += 1
    band = slice(lo, hi + 1)
    k_peak = float(np.sum(k[band] * power[band]) / np.sum(power[band]))
    return 1.0 / k_peak


@validate_params({"resolution_mm": [None, Interval(0, None, "neither")],
                  "column_spacing_mm": [None, Interval(0, None, "neither")], "var": [None, str],
                  "period": [Interval(0, None, "neither")], "method": [Options(("auto", "bin", "linear", "nearest"))]},
                 renamed={"ori_map_or_ds": "obj"})
@fill_doc
def pinwheels(
    obj: xr.DataArray | xr.Dataset,
    resolution_mm: float | None = None,
    column_spacing_mm: float | None = None,
    *,
    var: str | None = None,
    period: float = 180.0,
    method: str = "auto",
    area: str | None = None,
) -> xr.Dataset:
    """Detect pinwheels and measure their density per Λ².

    Parameters
    ----------
    obj : DataArray or Dataset
        Preferred orientation in degrees (period ``period``): a per-unit DataArray
        (dims ``unit``, coords x_mm/y_mm), a (y_mm, x_mm) image, or a Dataset
        holding one (e.g. ``analysis.orientation_map`` output; see ``var``).
        NaN (untuned) units are ignored.
    resolution_mm : float, optional
        Grid pixel size; default the median nearest-neighbour distance of units.
    column_spacing_mm : float, optional
        Λ; estimated from the map's power spectrum when not given.
    var : str, optional
        Variable name in a Dataset input (default: first of :data:`ORIENTATION_VARS`).
    period : float
        Period of the orientation values in degrees (180 for orientation).
    method : {"auto", "bin", "linear", "nearest"}
        Resampling onto the grid (see ``_grid.to_grid``): grid sheets are binned
        exactly, irregular ones interpolated linearly on Re z and Im z.
    %(area)s

    Returns
    -------
    xarray.Dataset
        dim ``pinwheel``: ``pinwheel_x_mm``, ``pinwheel_y_mm`` (plaquette centres),
        ``charge`` (+1: θ turns +180° counter-clockwise around it, −1: clockwise);
        scalars ``count``, ``n_positive``, ``n_negative``, ``column_spacing_mm`` (Λ),
        ``area_mm2`` (area of the plaquettes with a defined field), ``density``
        (count per Λ²); ``orientation_grid`` (y_mm, x_mm) in degrees.
    """
    da = _orientation_input(obj, var)
    to_phase = 2 * np.pi / period
    if "unit" in da.dims:
        da = select_area(da, area)
        theta = unit_values(da, "preferred orientation")
        pos = positions_of(da)
        if np.isfinite(theta).sum() < 4:
            raise UndefinedStatisticError("fewer than 4 units have a finite preferred orientation; nothing to map.")
        z, x, y, res, used = to_grid(np.exp(1j * to_phase * theta), pos, resolution_mm, method)
    else:
        img, x, y, res = from_grid_dataarray(da)
        z, used = np.exp(1j * to_phase * np.asarray(img, dtype=float)), "image"
    if min(z.shape) < 2:
        raise UndefinedStatisticError(f"the orientation grid is {z.shape}; it needs at least 2×2 pixels (lower resolution_mm).")
    phase = np.angle(z)
    phase[~np.isfinite(z)] = np.nan
    w = winding_numbers(phase)
    valid = np.isfinite(w)
    iy, ix = np.nonzero(valid & (w != 0))
    charge = np.sign(w[iy, ix]).astype(np.int8)
    area_mm2 = float(valid.sum()) * res * res
    if column_spacing_mm is None:
        lam = column_spacing(z, res)
        lam_source = "power spectrum peak"
    else:
        lam, lam_source = float(column_spacing_mm), "given"
    count = int(len(charge))
    density = count / (area_mm2 / lam**2) if area_mm2 > 0 else np.nan
    theta_grid = np.degrees(np.mod(phase, 2 * np.pi)) * (period / 360.0)
    return xr.Dataset(
        {
            "pinwheel_x_mm": ("pinwheel", x[ix] + res / 2, {"units": "mm"}),
            "pinwheel_y_mm": ("pinwheel", y[iy] + res / 2, {"units": "mm"}),
            "charge": ("pinwheel", charge, {"long_name": "winding of 2θ / 2π (sign of the pinwheel)"}),
            "count": ((), count),
            "n_positive": ((), int((charge > 0).sum())),
            "n_negative": ((), int((charge < 0).sum())),
            "column_spacing_mm": ((), lam, {"units": "mm", "source": lam_source}),
            "area_mm2": ((), area_mm2, {"units": "mm2"}),
            "density": ((), density, {"long_name": "pinwheels per column spacing squared", "reference": "≈ π (Kaschube et al. 2010)"}),
            "orientation_grid": grid_dataarray(theta_grid, x, y, "orientation_grid", units="deg", period=period),
        },
        attrs={"resolution_mm": res, "resampling": used, "period_deg": period},
    )
