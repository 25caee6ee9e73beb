"""Per-unit maps from files: a Sheet (maps computed on the fly) or a ``units_<area>.nc`` of ``cortexsim analyze``.

Used by ``cortexsim export`` and ``cortexsim compare``.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import xarray as xr

from ..errors import MapError, SheetError

#: Maps computed from a Sheet, by ``--what`` name.
SHEET_MAPS: tuple[str, ...] = ("dprime", "t", "preference", "orientation")


def _open(path: Path) -> xr.Dataset:
    if not path.exists():
        raise MapError(f"no file {str(path)!r}.")
    try:
        return xr.open_dataset(path, engine="h5netcdf")
    except Exception as exc:  # noqa: BLE001 - any reader failure means "not a netCDF/HDF5 map file"
        raise MapError(f"{path}: not a Sheet or per-unit netCDF file ({type(exc).__name__}: {exc}).") from exc


def _sheet_maps(ds: xr.Dataset, what: Sequence[str], by: str, target: str | None, reference: Sequence[str] | None,
                threshold: float, undefined: str) -> dict[str, xr.DataArray]:
    # the functions, not the package attributes (``analysis.selectivity`` is also a submodule's name)
    from ..analysis.preference import orientation_map, preference_map
    from ..analysis.selectivity import dprime, selectivity, tstat

    unknown = sorted(set(what) - set(SHEET_MAPS))
    if unknown:
        raise MapError(f"--what {unknown}: a Sheet gives the maps {', '.join(SHEET_MAPS)}.")
    out: dict[str, xr.DataArray] = {}
    with warnings.catch_warnings():  # dead units' d′ is NaN with a warning; the maps mark them NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        for name in what:
            if name in ("dprime", "t"):
                stat = "dprime" if name == "dprime" else "t"
                if target is None:
                    out[name] = selectivity(ds, by=by, stat=stat, undefined=undefined).rename(name)
                else:
                    fn = dprime if stat == "dprime" else tstat
                    out[name] = fn(ds, by, target, reference, undefined=undefined).rename(f"{name}_{target}")
            elif name == "preference":
                out[name] = preference_map(ds, by=by, threshold=threshold)
            else:
                out[name] = orientation_map(ds)["preferred_orientation_deg"]
    return out


def load_unit_maps(
    path: str | os.PathLike,
    what: Sequence[str] = ("dprime",),
    *,
    by: str = "domain",
    target: str | None = None,
    reference: Sequence[str] | None = None,
    area: str | None = None,
    threshold: float = 2.0,
    undefined: str = "nan",
) -> dict[str, dict[str, xr.DataArray]]:
    """Per-unit maps of a file, per area: ``{area: {name: DataArray}}``.

    Parameters
    ----------
    path : a Sheet (``.h5``) or a per-unit netCDF (``units_<area>.nc`` from ``cortexsim analyze``)
    what : map names. For a Sheet: ``dprime`` / ``t`` (``target`` vs the rest, or every
        category of ``by`` as one (category, unit) map when ``target`` is None),
        ``preference`` (labels, d′ > ``threshold``), ``orientation`` (preferred
        orientation of a grating recording). For a per-unit file: its variable names,
        or ``["all"]`` for every per-unit variable.
    area : keep only this area (default: every area).
    """
    path = Path(path)
    ds = _open(path)
    sheet = "responses" in ds.data_vars
    if sheet:
        from ..io import open_sheet

        ds.close()
        ds = open_sheet(path)
    areas = ds.cortex.areas if "area" in ds.coords else [None]
    if area is not None:
        if area not in areas:
            raise MapError(f"{path}: no area {area!r}; its areas are {areas}.")
        areas = [area]
    result: dict[str, dict[str, xr.DataArray]] = {}
    for a in areas:
        sub = ds.cortex.area(a) if a is not None else ds
        if sheet:
            try:
                maps = _sheet_maps(sub, list(what), by, target, reference, threshold, undefined)
            except SheetError as exc:
                raise MapError(f"{path}: {exc}") from exc
        else:
            per_unit = [n for n, v in sub.data_vars.items() if "unit" in v.dims]
            names = per_unit if list(what) == ["all"] else list(what)
            missing = [n for n in names if n not in sub.data_vars]
            if missing:
                raise MapError(f"{path}: no variable {missing}; its per-unit maps are {per_unit}. Pass --what with "
                               f"those names (or 'all').")
            maps = {n: sub[n].load() for n in names}
        result[str(a) if a is not None else "map"] = maps
    return result


def unit_map_file(path: str | os.PathLike) -> bool:
    """True when ``path`` is a Sheet or per-unit netCDF (rather than a NIfTI / GIFTI / NumPy map)."""
    from .files import split_suffix

    suffix = split_suffix(path)[1].lower()
    if suffix in (".h5", ".nc", ".hdf5", ".netcdf"):
        return True
    return suffix not in (".nii", ".nii.gz", ".gii", ".func.gii", ".label.gii", ".shape.gii", ".npy", ".npz")


def first_map(maps: dict[str, dict[str, xr.DataArray]]) -> tuple[str, xr.DataArray]:
    """(label, map) of the only map, or a MapError asking for --area / --what."""
    flat = [(f"{a}/{n}", m) for a, group in maps.items() for n, m in group.items()]
    if len(flat) != 1:
        raise MapError(f"the file gives {len(flat)} maps ({', '.join(k for k, _ in flat)}); pick one with --area and --what.")
    return flat[0]

