"""The Sheet: a labelled xarray Dataset of unit responses with cortical positions.

Schema (enforced by :func:`validate_sheet`)::

    dims        stimulus, unit                 (optionally time / repeat after them)
    responses   (stimulus, unit[, ...]) float  unit responses (arbitrary units)
    unit coords area (str), layer (str), channel (int), row (int), col (int),
                x_mm, y_mm (float, mm) [, z_mm], unit_id (int, unique)
    stim coords stimulus_id (str, unique) + any columns of the stimulus set
    attrs       cortexsim_version, model, layout, layout_params (JSON), units="mm",
                created (ISO 8601), checkpoint_sha256

``row``/``col`` are the unit's position inside its feature map (``-1`` when the
unit has no spatial position, e.g. a channel-level or dense unit).
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .errors import SheetError
from .jsonattrs import netcdf_attrs

UNIT_COORDS: tuple[str, ...] = ("area", "layer", "channel", "row", "col", "x_mm", "y_mm", "unit_id")
POSITION_COORDS: tuple[str, ...] = ("x_mm", "y_mm", "z_mm")
OPTIONAL_DIMS: tuple[str, ...] = ("time", "repeat")
#: Largest |position| accepted (mm): 1 km; larger values are a unit mistake (or damage).
MAX_POSITION_MM = 1e6

_COORD_ATTRS = {
    "x_mm": {"units": "mm", "long_name": "position on the cortical sheet, x"},
    "y_mm": {"units": "mm", "long_name": "position on the cortical sheet, y"},
    "z_mm": {"units": "mm", "long_name": "position on the cortical sheet, z"},
    "row": {"long_name": "row in the layer's feature map (-1: none)"},
    "col": {"long_name": "column in the layer's feature map (-1: none)"},
    "channel": {"long_name": "channel index in the layer"},
    "unit_id": {"long_name": "unique unit index within the sheet"},
    "area": {"long_name": "cortical area the layer is committed to"},
    "layer": {"long_name": "module name (torch named_modules)"},
}


def _version() -> str:
    from . import __version__

    return __version__


def make_sheet(
    responses: Any,
    *,
    x_mm: Any,
    y_mm: Any,
    z_mm: Any | None = None,
    area: Any = "area",
    layer: Any = "layer",
    channel: Any | None = None,
    row: Any | None = None,
    col: Any | None = None,
    unit_id: Any | None = None,
    stimuli: pd.DataFrame | Mapping[str, Any] | None = None,
    attrs: Mapping[str, Any] | None = None,
    validate: bool = True,
) -> xr.Dataset:
    """Build a Sheet from plain arrays.

    Parameters
    ----------
    responses : array-like or dask array, shape (n_stimuli, n_units[, ...])
        Unit responses. Kept lazy if it is a dask array.
    x_mm, y_mm, z_mm : array-like, shape (n_units,)
        Unit positions in mm (``z_mm`` only for 3-D layouts).
    area, layer : str or array-like of str, shape (n_units,)
        Area name and module name of each unit (a scalar is broadcast).
    channel, row, col : array-like of int, shape (n_units,), optional
        Channel index and feature-map position; default ``arange`` / ``-1``.
    unit_id : array-like of int, shape (n_units,), optional
        Unique unit ids; default ``arange(n_units)``.
    stimuli : DataFrame or mapping of column -> array (n_stimuli,), optional
        Stimulus metadata; becomes the stimulus coords. ``stimulus_id`` is made
        from the row number when absent.
    attrs : mapping, optional
        Extra dataset attributes (``model``, ``layout``, ``layout_params`` ...).

    Returns
    -------
    xarray.Dataset
        A validated Sheet.
    """
    shape = getattr(responses, "shape", None)
    if shape is None:
        try:
            responses = np.asarray(responses, dtype=float)
        except (ValueError, TypeError) as exc:
            raise SheetError(
                f"responses must be a rectangular array of numbers (stimulus × unit); could not convert "
                f"them ({exc}). Ragged lists need padding; strings are not responses."
            ) from None
        shape = responses.shape
    if len(shape) < 2 or len(shape) > 2 + len(OPTIONAL_DIMS):
        raise SheetError(
            f"responses must have 2 to {2 + len(OPTIONAL_DIMS)} dims (stimulus, unit[, time, repeat]); "
            f"got shape {tuple(shape)}."
        )
    n_stim, n_units = int(shape[0]), int(shape[1])
    dims = ("stimulus", "unit") + OPTIONAL_DIMS[: len(shape) - 2]

    def unit_array(name: str, value: Any, default: Any, kind: type) -> np.ndarray:
        if value is None:
            value = default
        try:
            arr = np.asarray(value)
        except ValueError as exc:  # ragged nested lists
            raise SheetError(f"coord {name!r} must be one value per unit; could not convert it ({exc}).") from None
        if arr.ndim == 0:
            arr = np.full(n_units, arr.item())
        if arr.shape != (n_units,):
            raise SheetError(
                f"coord {name!r} has shape {arr.shape} but responses have {n_units} units; "
                f"give one value per unit."
            )
        if kind is str:
            return arr.astype(str)
        if arr.dtype.kind not in "iufb" or (kind is np.int64 and arr.dtype.kind == "f"
                                            and not np.array_equal(arr, np.round(arr))):
            raise SheetError(
                f"coord {name!r} must be {'integers' if kind is np.int64 else 'numbers (mm)'}; got "
                f"dtype {arr.dtype} (e.g. {arr[:3].tolist()})."
            )
        return arr.astype(kind)

    coords: dict[str, tuple[str, np.ndarray]] = {
        "area": ("unit", unit_array("area", area, "area", str)),
        "layer": ("unit", unit_array("layer", layer, "layer", str)),
        "channel": ("unit", unit_array("channel", channel, np.arange(n_units), np.int64)),
        "row": ("unit", unit_array("row", row, -1, np.int64)),
        "col": ("unit", unit_array("col", col, -1, np.int64)),
        "x_mm": ("unit", unit_array("x_mm", x_mm, None, np.float64)),
        "y_mm": ("unit", unit_array("y_mm", y_mm, None, np.float64)),
        "unit_id": ("unit", unit_array("unit_id", unit_id, np.arange(n_units), np.int64)),
    }
    if z_mm is not None:
        coords["z_mm"] = ("unit", unit_array("z_mm", z_mm, None, np.float64))

    table = stimulus_table(stimuli, n_stim)
    for column in table.columns:
        coords[column] = ("stimulus", table[column].to_numpy())

    ds = xr.Dataset(
        {"responses": (dims, responses, {"long_name": "unit response", "units": "a.u."})},
        coords=coords,
    )
    for name, cattrs in _COORD_ATTRS.items():
        if name in ds.coords:
            ds[name].attrs.update(cattrs)
    ds.attrs.update(default_attrs())
    if attrs:
        ds.attrs.update(netcdf_attrs(attrs))  # netCDF attrs are str / number / 1-D array: the rest as JSON
    if validate:
        validate_sheet(ds, check_values=False)
    return ds


def stimulus_table(stimuli: pd.DataFrame | Mapping[str, Any] | None, n_stim: int) -> pd.DataFrame:
    """Normalise stimulus metadata to a DataFrame with a unique ``stimulus_id`` column.

    Parameters
    ----------
    stimuli : DataFrame, mapping of column -> array (n_stim,), or None
    n_stim : int
        Number of stimuli the responses hold.
    """
    if stimuli is None:
        table = pd.DataFrame(index=range(n_stim))
    elif isinstance(stimuli, pd.DataFrame):
        table = stimuli.reset_index(drop=True).copy()
    else:
        try:
            table = pd.DataFrame({k: np.asarray(v) for k, v in stimuli.items()})
        except ValueError as exc:  # columns of different lengths, ragged values
            raise SheetError(f"stimulus metadata must be one value per stimulus in every column ({exc}).") from None
    if len(table) != n_stim:
        raise SheetError(
            f"stimulus metadata has {len(table)} rows but responses have {n_stim} stimuli."
        )
    if "stimulus_id" not in table.columns:
        width = max(4, len(str(max(n_stim - 1, 0))))
        table.insert(0, "stimulus_id", [f"s{i:0{width}d}" for i in range(n_stim)])
    table["stimulus_id"] = table["stimulus_id"].astype(str)
    for column in table.columns:
        if table[column].dtype == object:
            table[column] = table[column].astype(str)
    return table


def default_attrs() -> dict[str, str]:
    """Attributes every Sheet carries (version, units, creation time)."""
    return {
        "cortexsim_version": _version(),
        "units": "mm",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "Conventions": "cortexsim-sheet-1",
    }


def validate_sheet(
    ds: xr.Dataset, *, allow_nonfinite: bool = False, check_values: bool = True
) -> xr.Dataset:
    """Check that ``ds`` follows the Sheet schema; raise :class:`SheetError` on the first problem.

    Parameters
    ----------
    ds : xarray.Dataset
    allow_nonfinite : bool
        Accept NaN/Inf in ``responses`` (e.g. a deliberately masked recording).
    check_values : bool
        Scan ``responses`` for NaN/Inf. For dask-backed sheets the scan runs
        chunk by chunk, so memory stays bounded, but it reads the whole array.

    Returns
    -------
    xarray.Dataset
        ``ds`` itself, so the call can be chained.
    """
    if not isinstance(ds, xr.Dataset):
        raise SheetError(f"a Sheet is an xarray.Dataset; got {type(ds).__name__}.")
    if "responses" not in ds.data_vars:
        raise SheetError(
            "Sheet has no 'responses' variable; record one with SimulatedCortex.record "
            "or build it with cortexsim.make_sheet."
        )
    resp = ds["responses"]
    if resp.dims[:2] != ("stimulus", "unit") or any(d not in OPTIONAL_DIMS for d in resp.dims[2:]):
        raise SheetError(
            f"'responses' must have dims ('stimulus', 'unit'[, 'time' | 'repeat']); got {resp.dims}. "
            f"Use ds.transpose('stimulus', 'unit', ...) or rename the dims."
        )
    n_units = ds.sizes["unit"]
    if ds.sizes["stimulus"] == 0 or n_units == 0:
        raise SheetError(
            f"the Sheet is empty ({ds.sizes['stimulus']} stimuli × {n_units} units); a Sheet needs at least "
            f"one stimulus and one unit (check the selection that produced it)."
        )
    for name in UNIT_COORDS:
        if name not in ds.coords:
            raise SheetError(f"Sheet is missing the unit coord {name!r} (needed: {', '.join(UNIT_COORDS)}).")
        if ds[name].dims != ("unit",):
            raise SheetError(f"coord {name!r} must have dims ('unit',); got {ds[name].dims}.")
    if "stimulus_id" not in ds.coords or ds["stimulus_id"].dims != ("stimulus",):
        raise SheetError("Sheet is missing the stimulus coord 'stimulus_id' along dim 'stimulus'.")
    for name in POSITION_COORDS:
        if name in ds.coords:
            pos = np.asarray(ds[name].values)
            if not np.issubdtype(pos.dtype, np.number):
                raise SheetError(f"position coord {name!r} must be numeric (mm); got dtype {pos.dtype}.")
            bad = ~np.isfinite(pos)
            if bad.any():
                raise SheetError(
                    f"position coord {name!r} has {int(bad.sum())} non-finite values "
                    f"(first at unit index {int(np.argmax(bad))}); every unit needs a finite position in mm."
                )
            far = np.abs(pos) > MAX_POSITION_MM
            if far.any():
                raise SheetError(
                    f"position coord {name!r} has {int(far.sum())} values beyond ±{MAX_POSITION_MM:g} mm (e.g. "
                    f"{float(pos[np.argmax(far)]):.3g} at unit index {int(np.argmax(far))}); positions are in mm "
                    f"on a cortical sheet — convert the units (µm? m?) or fix the layout."
                )
    for name in ("area", "layer"):
        if ds[name].dtype.kind not in "OUS" or not _all_str(ds[name].values):
            raise SheetError(
                f"coord {name!r} must hold strings (names); got dtype {ds[name].dtype}. "
                f"Convert it, e.g. ds.assign_coords({name}=ds.{name}.astype(str))."
            )
    for name, coord in ds.coords.items():
        if coord.dims == ("stimulus",) and coord.dtype.kind == "O":
            kinds = {_label_kind(v) for v in np.asarray(coord.values).tolist()}
            if len(kinds - {"missing"}) > 1:
                raise SheetError(
                    f"stimulus coord {name!r} mixes {' and '.join(sorted(kinds - {'missing'}))} labels; analyses "
                    f"compare labels by value, so use one type, e.g. ds.assign_coords({name}=ds.{name}.astype(str))."
                )
    for name in ("channel", "row", "col", "unit_id"):
        if not np.issubdtype(ds[name].dtype, np.integer):
            raise SheetError(f"coord {name!r} must be integer; got dtype {ds[name].dtype}.")
    uid = np.asarray(ds["unit_id"].values)
    if len(np.unique(uid)) != n_units:
        values, counts = np.unique(uid, return_counts=True)
        raise SheetError(
            f"unit_id has duplicates (e.g. {values[counts > 1][:5].tolist()}); unit ids must be unique."
        )
    sid = pd.Index(np.asarray(ds["stimulus_id"].values))
    if sid.has_duplicates:
        raise SheetError(
            f"stimulus_id has duplicates (e.g. {sid[sid.duplicated()][:5].tolist()}); ids must be unique."
        )
    if not np.issubdtype(resp.dtype, np.floating):
        raise SheetError(f"'responses' must be floating point; got dtype {resp.dtype}.")
    if check_values and not allow_nonfinite:
        finite = np.isfinite(resp.data)
        n_bad = int((~finite).sum().compute() if hasattr(finite, "compute") else (~finite).sum())
        if n_bad:
            raise SheetError(
                f"'responses' has {n_bad} NaN/Inf values; fix the recording or pass "
                f"allow_nonfinite=True if they are intended."
            )
    return ds


def _all_str(values: np.ndarray) -> bool:
    arr = np.asarray(values)
    return arr.dtype.kind in "US" or all(isinstance(v, str) for v in arr.ravel().tolist())


def _label_kind(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "missing"
    if isinstance(value, (bool, np.bool_)):
        return "boolean"
    if isinstance(value, (int, float, np.number)):
        return "numeric"
    if isinstance(value, (str, bytes)):
        return "string"
    return type(value).__name__


def is_sheet(ds: Any) -> bool:
    """True when ``ds`` passes :func:`validate_sheet` (values not scanned)."""
    try:
        validate_sheet(ds, check_values=False)
    except SheetError:
        return False
    return True
