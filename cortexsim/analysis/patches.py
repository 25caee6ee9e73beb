"""Category-selective patches: smoothed selectivity → threshold → connected regions.

As in fMRI localiser analyses (and TDANN's patch counts), a per-unit selectivity
map (Welch t or d′) is put on a regular mm grid, smoothed with a Gaussian of
``sigma_mm`` (NaN-aware normalised convolution, so the sheet's edges and empty
pixels do not dilute it), thresholded, and split into 4-connected regions;
regions smaller than ``min_area_mm2`` are dropped.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from scipy import ndimage

from ..errors import SheetError, UndefinedStatisticError
from ._params import Interval, Options, fill_doc, validate_params
from ._grid import from_grid_dataarray, grid_dataarray, nan_gaussian, positions_of, select_area, to_grid, unit_values

_STATS = ("t", "dprime")


def _patch_table(smoothed: np.ndarray, mask: np.ndarray, x: np.ndarray, y: np.ndarray, res: float,
                 min_area_mm2: float, connectivity: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    structure = ndimage.generate_binary_structure(2, connectivity)
    labels, n = ndimage.label(mask, structure=structure)
    flat = labels.ravel()
    area = np.bincount(flat, minlength=n + 1)[1:] * res * res
    gy, gx = np.meshgrid(y, x, indexing="ij")
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = np.bincount(flat, gx.ravel(), n + 1)[1:] / (area / (res * res))
        cy = np.bincount(flat, gy.ravel(), n + 1)[1:] / (area / (res * res))
    peak = ndimage.maximum(smoothed, labels, np.arange(1, n + 1)) if n else np.zeros(0)
    keep = area >= min_area_mm2
    # relabel kept patches 1..m (by decreasing area), dropped ones to 0
    order = np.flatnonzero(keep)[np.argsort(-area[keep], kind="stable")]
    new = np.zeros(n + 1, dtype=np.int32)
    new[order + 1] = np.arange(1, len(order) + 1)
    table = {
        "area_mm2": area[order],
        "centroid_x_mm": cx[order],
        "centroid_y_mm": cy[order],
        "peak": np.asarray(peak, dtype=float)[order],
    }
    return new[labels], table


@validate_params({"threshold": [Interval()], "sigma_mm": [Interval(0, None)], "min_area_mm2": [Interval(0, None)],
                  "resolution_mm": [None, Interval(0, None, "neither")], "stat": [Options(_STATS)],
                  "connectivity": [Options((1, 2))], "method": [Options(("bin", "auto", "linear", "nearest"))]},
                 renamed={"values": "obj", "kind": "stat"})
@fill_doc
def patches(
    obj: xr.DataArray | np.ndarray,
    threshold: float = 4.0,
    sigma_mm: float = 2.4,
    min_area_mm2: float = 100.0,
    resolution_mm: float | None = None,
    stat: str = "t",
    *,
    positions: Any = None,
    connectivity: int = 1,
    method: str = "bin",
    area: str | None = None,
) -> xr.Dataset:
    """Find contiguous patches where smoothed selectivity exceeds a threshold.

    Parameters
    ----------
    obj : DataArray over ``unit`` (coords x_mm/y_mm), (y_mm, x_mm) image, or ndarray
        Selectivity (Welch t or d′) per unit; NaN units are ignored.
    threshold : float
        A pixel belongs to a patch when its smoothed value is ``> threshold``.
    sigma_mm : float
        Gaussian smoothing σ in mm (TDANN/fMRI-like 2.4 mm; 0 = none).
    min_area_mm2 : float
        Patches smaller than this are dropped.
    resolution_mm : float, optional
        Grid pixel size; default the median nearest-neighbour distance between units.
    stat : {"t", "dprime"}
        What ``obj`` holds (recorded in ``attrs["stat"]``; ``kind=`` is its deprecated old name).
    %(positions)s
        A Sheet works too.
    connectivity : {1, 2}
        1: pixels sharing an edge are connected; 2: also diagonal neighbours.
    method : {"bin", "auto", "linear", "nearest"}
        Resampling onto the grid; binning (mean per pixel) plus the NaN-aware
        smoothing fills the small holes of an irregular sheet.
    %(area)s

    Returns
    -------
    xarray.Dataset
        dim ``patch`` (1…m, by decreasing area): ``area_mm2``, ``centroid_x_mm``,
        ``centroid_y_mm``, ``peak`` (max smoothed value); scalars ``count``,
        ``total_area_mm2``; images (y_mm, x_mm): ``smoothed`` and ``label``
        (patch number, 0 = none).
    """
    if isinstance(obj, xr.DataArray) and "unit" not in obj.dims:
        img, x, y, res = from_grid_dataarray(obj)
        img = np.asarray(img, dtype=float)
    else:
        if isinstance(obj, xr.DataArray):
            obj = select_area(obj, area)
        v = unit_values(obj, "selectivity values")
        pos = positions_of(positions if positions is not None else obj)
        if len(pos) != len(v):
            raise SheetError(f"{len(v)} values but {len(pos)} positions; give one value per unit.")
        if not np.isfinite(v).any():
            raise UndefinedStatisticError("every selectivity value is NaN; nothing to threshold.")
        img, x, y, res, _ = to_grid(v, pos, resolution_mm, method)
    smoothed = nan_gaussian(img, sigma_mm / res)
    with np.errstate(invalid="ignore"):
        mask = np.nan_to_num(smoothed, nan=-np.inf) > threshold
    labels, table = _patch_table(smoothed, mask, x, y, res, min_area_mm2, connectivity)
    m = len(table["area_mm2"])
    return xr.Dataset(
        {
            "area_mm2": ("patch", table["area_mm2"], {"units": "mm2"}),
            "centroid_x_mm": ("patch", table["centroid_x_mm"], {"units": "mm"}),
            "centroid_y_mm": ("patch", table["centroid_y_mm"], {"units": "mm"}),
            "peak": ("patch", table["peak"], {"long_name": f"max smoothed {stat}"}),
            "count": ((), m),
            "total_area_mm2": ((), float(table["area_mm2"].sum()), {"units": "mm2"}),
            "smoothed": grid_dataarray(smoothed, x, y, "smoothed", long_name=f"smoothed {stat}"),
            "label": grid_dataarray(labels, x, y, "label", long_name="patch number (0 = none)"),
        },
        coords={"patch": np.arange(1, m + 1)},
        attrs={
            "stat": stat,
            "threshold": float(threshold),
            "sigma_mm": float(sigma_mm),
            "min_area_mm2": float(min_area_mm2),
            "resolution_mm": float(res),
            "connectivity": int(connectivity),
        },
    )


def _category_maps(ds: xr.Dataset, by: str, categories: Sequence[Any] | None, stat: str) -> xr.DataArray:
    """One-vs-rest selectivity maps (category, unit) from a Sheet (one pass over responses)."""
    from .selectivity import selectivity

    maps = selectivity(ds, by=by, stat="t" if stat == "t" else "dprime")
    if categories is not None:
        missing = [c for c in categories if c not in set(maps["category"].values.tolist())]
        if missing:
            raise SheetError(f"categories {missing} are not values of {by!r}; values are {maps['category'].values.tolist()}.")
        maps = maps.sel(category=list(categories))
    return maps


@validate_params({"stat": [Options(_STATS)]}, renamed={"ds_or_maps": "obj", "kind": "stat"},
                 positional=("by", "categories"))
def patches_by_category(
    obj: xr.Dataset | xr.DataArray,
    *,
    by: str = "domain",
    categories: Sequence[Any] | None = None,
    stat: str = "t",
    threshold: float = 4.0,
    sigma_mm: float = 2.4,
    min_area_mm2: float = 100.0,
    resolution_mm: float | None = None,
    area: str | None = None,
) -> xr.Dataset:
    """Patch count and total area for each category.

    Parameters
    ----------
    obj : Sheet or DataArray (category, unit)
        A Sheet: one-vs-rest ``tstat`` (stat "t") or ``dprime`` maps are computed
        for every value of the stimulus coord ``by`` (or ``categories``). A
        DataArray: selectivity maps with a leading category dim (any name).
    Other parameters as in :func:`patches`.

    Returns
    -------
    xarray.Dataset
        dim ``category``: ``count``, ``total_area_mm2``, ``mean_area_mm2``.
    """
    return _by_category(obj, by, categories, stat, threshold, sigma_mm, min_area_mm2, resolution_mm, area)[0]


def _by_category(
    obj: xr.Dataset | xr.DataArray, by: str = "domain", categories: Sequence[Any] | None = None,
    stat: str = "t", threshold: float = 4.0, sigma_mm: float = 2.4, min_area_mm2: float = 100.0,
    resolution_mm: float | None = None, area: str | None = None,
) -> tuple[xr.Dataset, list[xr.Dataset]]:
    """:func:`patches_by_category` and the per-category :func:`patches` results it summarises."""
    if isinstance(obj, xr.Dataset):
        maps = _category_maps(select_area(obj, area), by, categories, stat)
    else:
        maps = select_area(obj, area)
        if maps.ndim != 2 or "unit" not in maps.dims:
            raise SheetError(f"category maps must be a 2-D DataArray (category, unit); got dims {maps.dims}.")
        cat_dim = next(d for d in maps.dims if d != "unit")
        maps = maps.transpose(cat_dim, "unit").rename({cat_dim: "category"})
    results = [
        patches(maps.isel(category=i).drop_vars("category", errors="ignore"), threshold, sigma_mm,
                min_area_mm2, resolution_mm, stat)
        for i in range(maps.sizes["category"])
    ]
    count = np.array([int(r["count"]) for r in results])
    total = np.array([float(r["total_area_mm2"]) for r in results])
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    summary = xr.Dataset(
        {
            "count": ("category", count),
            "total_area_mm2": ("category", total, {"units": "mm2"}),
            "mean_area_mm2": ("category", mean, {"units": "mm2"}),
        },
        coords={"category": maps["category"].values if "category" in maps.coords else np.arange(len(count))},
        attrs={"stat": stat, "threshold": float(threshold), "sigma_mm": float(sigma_mm), "min_area_mm2": float(min_area_mm2)},
    )
    return summary, results
