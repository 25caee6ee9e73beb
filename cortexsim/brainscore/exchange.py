"""Data in the shape Brain-Score expects, and the files that carry it to its environment.

Brain-Score's assemblies are ``presentation × neuroid`` arrays with a
``stimulus_id`` (and, for recordings with repeats, ``repetition``) per
presentation and a ``neuroid_id`` per neuroid. This module turns a Sheet area and
a lab's neural data into such ``xarray.DataArray`` objects (in cortexsim's
environment) and writes them as flat NetCDF files that
:mod:`cortexsim.brainscore.runner` reads into ``NeuroidAssembly`` objects there.

Neural data accepted by :func:`load_neural`:

* an ``xarray.DataArray`` (or a Dataset with one data variable, or a variable
  called ``responses`` / ``neural``), in memory or in a NetCDF / HDF5 file, with
  dims ``(presentation | stimulus, neuroid)`` or ``(repetition, presentation |
  stimulus, neuroid)``;
* a NumPy ``.npz`` file with ``responses`` (P × N, or R × S × N), ``stimulus_id``,
  ``neuroid_id`` and optionally ``repetition``, ``region``, ``tissue_x``,
  ``tissue_y`` (read with ``allow_pickle=False``).

Coordinates: ``stimulus_id`` per presentation (required), ``repetition`` per
presentation (optional; enables ceilings), ``neuroid_id`` per neuroid (required),
optionally ``region`` and ``tissue_x`` / ``tissue_y`` (mm) per neuroid, and any
further per-presentation coords (``object_name`` …).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from cortexsim.errors import BrainScoreError

#: Brain-Score's cortical regions (the keys of a region→layer commitment).
REGIONS: tuple[str, ...] = ("V1", "V2", "V4", "IT")
_STIM_DIMS = ("presentation", "stimulus", "stimulus_id", "image")


def _from_file(path: Path) -> xr.DataArray:
    if not path.is_file():
        raise BrainScoreError(f"no neural data file at {str(path)!r}.")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        data = arrays.pop("responses", arrays.pop("data", None))
        if data is None:
            raise BrainScoreError(f"{path} has no 'responses' array (found {sorted(arrays)}).")
        dims = ("repetition", "presentation", "neuroid") if data.ndim == 3 else ("presentation", "neuroid")
        if data.ndim not in (2, 3):
            raise BrainScoreError(f"'responses' in {path} must be P × N or R × S × N; got shape {data.shape}.")
        coords: dict[str, Any] = {}
        for name, values in arrays.items():
            values = np.asarray(values)
            if values.ndim == 0:
                continue
            if name in ("neuroid_id", "region", "tissue_x", "tissue_y", "tissue_z"):
                dim = "neuroid"
            elif name == "repetition" and data.ndim == 3:
                dim = "repetition"
            else:
                dim = "presentation"
            if values.shape != (data.shape[dims.index(dim)],):
                raise BrainScoreError(f"array {name!r} in {path} has shape {values.shape}; it should have one value "
                                      f"per {dim} ({data.shape[dims.index(dim)]}).")
            coords[name] = (dim, values)
        return xr.DataArray(data, dims=dims, coords=coords)
    try:
        ds = xr.open_dataset(path, engine="h5netcdf")
    except Exception:  # noqa: BLE001 - netCDF3 / classic files
        try:
            ds = xr.open_dataset(path)
        except Exception as exc:  # noqa: BLE001
            raise BrainScoreError(f"cannot read neural data {path} as NetCDF/HDF5: {exc}") from None
    with ds:
        ds = ds.load()
    return _pick_variable(ds, str(path))


def _pick_variable(ds: xr.Dataset, what: str) -> xr.DataArray:
    names = list(ds.data_vars)
    for name in ("responses", "neural", "data"):
        if name in names:
            return ds[name]
    if len(names) == 1:
        return ds[names[0]]
    raise BrainScoreError(f"{what} holds {names}; name the neural variable 'responses' or pass the DataArray.")


def _flatten_repetitions(da: xr.DataArray) -> xr.DataArray:
    """``(presentation|stimulus[, repetition], neuroid)`` in any order -> ``(presentation, neuroid)``.

    A repetition dim is folded into presentations (repetition-major), its values
    becoming a ``repetition`` coord; per-stimulus coords are repeated alongside.
    """
    import pandas as pd

    multi = [d for d in da.dims if isinstance(da.indexes.get(d), pd.MultiIndex)]
    if multi:
        da = da.reset_index(multi)
    stim = next((d for d in da.dims if d in _STIM_DIMS), None)
    if "neuroid" not in da.dims or stim is None:
        raise BrainScoreError(f"neural data needs dims (presentation, neuroid) (or stimulus for presentation, "
                              f"optionally with repetition); got {da.dims}.")
    extra = [d for d in da.dims if d not in (stim, "neuroid", "repetition")]
    if extra:
        raise BrainScoreError(f"neural data has extra dims {extra}; select or average them first (e.g. "
                              f"da.mean('time_bin')).")
    coords: dict[str, tuple[str, np.ndarray]] = {}
    if stim == "stimulus_id" or ("stimulus_id" not in da.coords and stim != "presentation" and stim in da.coords):
        coords["stimulus_id"] = ("presentation", np.asarray(da[stim].values))
    if "repetition" not in da.dims:
        da = da.transpose(stim, "neuroid")
        values = np.asarray(da.values)
        for name, c in da.coords.items():
            if c.ndim == 1 and name != stim:
                coords.setdefault(name, ("presentation" if c.dims == (stim,) else c.dims[0], np.asarray(c.values)))
        return xr.DataArray(values, dims=("presentation", "neuroid"), coords=coords)
    da = da.transpose("repetition", stim, "neuroid")
    n_rep, n_stim = da.sizes["repetition"], da.sizes[stim]
    values = np.asarray(da.values).reshape(n_rep * n_stim, da.sizes["neuroid"])
    reps = np.asarray(da["repetition"].values) if "repetition" in da.coords else np.arange(n_rep)
    coords["repetition"] = ("presentation", np.repeat(reps, n_stim))
    if "stimulus_id" in coords:
        coords["stimulus_id"] = ("presentation", np.tile(coords["stimulus_id"][1], n_rep))
    for name, c in da.coords.items():
        if c.ndim != 1 or name in (stim, "repetition") or name in coords:
            continue
        if c.dims == (stim,):
            coords[name] = ("presentation", np.tile(np.asarray(c.values), n_rep))
        elif c.dims == ("neuroid",):
            coords[name] = ("neuroid", np.asarray(c.values))
    return xr.DataArray(values, dims=("presentation", "neuroid"), coords=coords)


def load_neural(neural: Any) -> xr.DataArray:
    """Neural data as a validated ``(presentation, neuroid)`` DataArray (see module docstring).

    Returns a DataArray with ``stimulus_id`` (str) and optionally ``repetition``
    (int) on ``presentation``, ``neuroid_id`` (str) and any of ``region``,
    ``tissue_x``, ``tissue_y`` on ``neuroid``.

    Raises
    ------
    BrainScoreError
        Missing file, missing ``stimulus_id`` / ``neuroid_id``, wrong dims, NaNs,
        duplicated (stimulus, repetition) pairs or neuroid ids.
    """
    if isinstance(neural, (str, os.PathLike)):
        da = _from_file(Path(neural))
    elif isinstance(neural, xr.Dataset):
        da = _pick_variable(neural, "the neural Dataset")
    elif isinstance(neural, xr.DataArray):
        da = neural
    else:
        raise BrainScoreError(f"neural data must be a path (.nc/.h5/.npz), an xarray DataArray or Dataset; "
                              f"got {type(neural).__name__}.")
    da = _flatten_repetitions(da)
    if "stimulus_id" not in da.coords or da["stimulus_id"].dims != ("presentation",):
        raise BrainScoreError("neural data has no 'stimulus_id' coord on its presentation dim; add it with "
                              "da.assign_coords(stimulus_id=('presentation', ids)).")
    if "neuroid_id" not in da.coords or da["neuroid_id"].dims != ("neuroid",):
        raise BrainScoreError("neural data has no neuroid coords ('neuroid_id' on its neuroid dim); add them with "
                              "da.assign_coords(neuroid_id=('neuroid', ids)) — one id per recording site / voxel.")
    ids = np.asarray(da["neuroid_id"].values).astype(str)
    if len(np.unique(ids)) != len(ids):
        raise BrainScoreError("neuroid_id values repeat; every neuroid needs its own id.")
    values = np.asarray(da.values, dtype=np.float64)
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).sum())
        raise BrainScoreError(f"neural data holds {bad} NaN/inf values; drop or impute them first.")
    coords = {"stimulus_id": ("presentation", np.asarray(da["stimulus_id"].values).astype(str)),
              "neuroid_id": ("neuroid", ids)}
    for name, c in da.coords.items():
        if name in coords or name in da.dims or c.ndim != 1:
            continue
        coords[name] = (c.dims[0], np.asarray(c.values))
    out = xr.DataArray(values, dims=("presentation", "neuroid"), coords=coords, name="responses")
    keys = out["stimulus_id"].values.astype(object)
    if "repetition" in out.coords:
        keys = keys + "\x00" + out["repetition"].values.astype(str).astype(object)
    if len(np.unique(keys)) != len(keys):
        raise BrainScoreError("a stimulus_id appears more than once per repetition; give repeated presentations "
                              "a 'repetition' coord (0, 1, ...).")
    for name in ("tissue_x", "tissue_y"):
        if name in out.coords and out[name].dims != ("neuroid",):
            raise BrainScoreError(f"{name} must be a coord on the neuroid dim (mm).")
    return out


def average_repetitions(neural: xr.DataArray) -> xr.DataArray:
    """Mean over repetitions: ``(stimulus, neuroid)`` with ``stimulus_id`` as the stimulus index."""
    if "repetition" not in neural.coords:
        return neural.rename({"presentation": "stimulus"}).set_index(stimulus="stimulus_id")
    per_stim = [c for c, v in neural.coords.items() if v.dims == ("presentation",) and c not in ("repetition", "stimulus_id")]
    mean = neural.drop_vars(per_stim + ["repetition"]).groupby("stimulus_id").mean()
    return mean.rename({"stimulus_id": "stimulus"}).transpose("stimulus", "neuroid")


def select_area(sheet: Any, region: str | None, area: str | None, neural_region: str | None) -> tuple[xr.Dataset, str, str]:
    """The Sheet area to score and the Brain-Score region it stands for.

    ``area`` defaults to ``region``; ``region`` to the neural data's ``region`` coord, then ``area``.
    Returns (sub-Sheet, area, region).
    """
    from cortexsim.io import open_sheet

    ds = open_sheet(sheet) if isinstance(sheet, (str, os.PathLike)) else sheet
    if not isinstance(ds, xr.Dataset) or "responses" not in ds:
        raise BrainScoreError(f"sheet must be a cortexsim Sheet (Dataset or file); got {type(sheet).__name__}.")
    areas = ds.cortex.areas
    region = region or neural_region
    if region is not None and neural_region is not None and region != neural_region:
        raise BrainScoreError(f"the neural data were recorded in {neural_region!r}, not in region {region!r}.")
    area = area or (region if region in areas else None)
    if area is None:
        if region is not None:
            raise BrainScoreError(f"unknown region {region!r}: the Sheet's areas are {areas}; record an area of "
                                  f"that name or pass area=<one of them> (--area) to score it as {region}.")
        if len(areas) != 1:
            raise BrainScoreError(f"the Sheet has areas {areas}; say which to score with region= (--region) or "
                                  f"area= (--area).")
        area = areas[0]
    if area not in areas:
        raise BrainScoreError(f"unknown area {area!r}: the Sheet's areas are {areas}.")
    sub = ds.cortex.area(area)
    extra = [d for d in sub["responses"].dims[2:]]
    if "time" in extra:
        raise BrainScoreError("the Sheet's responses have a time dim; select one time step (sheet.isel(time=k)) "
                              "or average them first.")
    return sub, area, region or area


def model_responses(sub: xr.Dataset, stimulus_ids: np.ndarray) -> xr.DataArray:
    """Responses of a sub-Sheet for ``stimulus_ids`` (in that order): ``(presentation, neuroid)`` with positions.

    Raises
    ------
    BrainScoreError
        Stimulus ids of the neural data missing from the Sheet (non-matching ids).
    """
    sheet_ids = np.asarray(sub["stimulus_id"].values).astype(str)
    if len(np.unique(sheet_ids)) != len(sheet_ids):
        raise BrainScoreError("the Sheet's stimulus_id values repeat; every stimulus needs its own id.")
    lookup = {s: i for i, s in enumerate(sheet_ids)}
    missing = [s for s in stimulus_ids if s not in lookup]
    if missing:
        raise BrainScoreError(
            f"{len(missing)} of {len(stimulus_ids)} neural stimulus ids are not in the Sheet (e.g. {missing[:3]}; "
            f"the Sheet has e.g. {list(sheet_ids[:3])}); record the Sheet on the same stimuli with the same "
            f"stimulus_id values.")
    idx = np.fromiter((lookup[s] for s in stimulus_ids), dtype=np.int64, count=len(stimulus_ids))
    resp = sub["responses"].isel(stimulus=idx)
    if "repeat" in resp.dims:
        resp = resp.mean("repeat")
    values = np.asarray(resp.values, dtype=np.float32)
    pos = sub.cortex.positions
    coords = {
        "stimulus_id": ("presentation", np.asarray(stimulus_ids).astype(str)),
        "neuroid_id": ("neuroid", np.asarray(sub["unit_id"].values).astype(str)),
        "layer": ("neuroid", np.asarray(sub["layer"].values).astype(str)),
        "tissue_x": ("neuroid", pos[:, 0]),
        "tissue_y": ("neuroid", pos[:, 1]),
    }
    if pos.shape[1] > 2:
        coords["tissue_z"] = ("neuroid", pos[:, 2])
    return xr.DataArray(values, dims=("presentation", "neuroid"), coords=coords, name="responses")


def write_exchange(da: xr.DataArray, path: Path) -> Path:
    """Write a ``(presentation, neuroid)`` DataArray as a flat NetCDF-4 file the runner reads (atomic)."""
    from cortexsim.io import atomic_path

    coords = {}
    for name, c in da.coords.items():
        values = np.asarray(c.values)
        if values.dtype.kind in "OUS":
            values = values.astype(str)
        coords[name] = (c.dims, values)
    ds = xr.Dataset({"responses": (da.dims, np.asarray(da.values))}, coords=coords)
    ds = ds.drop_indexes([d for d in ds.dims if d in ds.indexes]) if hasattr(ds, "drop_indexes") else ds
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")
    return path


def read_exchange(path: str | os.PathLike) -> xr.DataArray:
    """Read an assembly file written by the runner: ``(presentation, neuroid)`` DataArray with its coords."""
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        ds = ds.load()
    return ds["responses"]
