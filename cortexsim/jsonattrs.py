"""Attributes and summaries to strict JSON / netCDF attributes: the one sanitiser.

``to_jsonable`` turns what analyses and recordings put in attrs (numpy scalars
and arrays, tuples, paths, tensors, NaN) into plain Python that ``json.dumps(...,
allow_nan=False)`` accepts; ``netcdf_attr`` keeps what netCDF can store natively
(str, numbers, 1-D numeric arrays) and writes the rest as JSON text.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np

__all__ = ["dumps", "netcdf_attr", "netcdf_attrs", "to_jsonable"]


def to_jsonable(value: Any, *, nonfinite: str = "null") -> Any:
    """Plain-Python (JSON-ready) form of ``value``.

    numpy scalars → Python numbers, arrays / tuples / sets → lists (sets sorted),
    mapping keys → str, paths → str, torch tensors → lists, other objects → ``str``.

    Parameters
    ----------
    nonfinite : {"null", "keep"}
        NaN / ±Inf floats become ``None`` (strict JSON, readable by any parser) or
        stay floats (for netCDF attrs, which store them).
    """
    if nonfinite not in ("null", "keep"):
        raise ValueError(f"nonfinite must be 'null' or 'keep'; got {nonfinite!r}.")
    return _convert(value, nonfinite == "null")


def _convert(value: Any, null: bool) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        if isinstance(value, float) and null and not math.isfinite(value):
            return None
        return value
    if isinstance(value, np.generic):
        return _convert(value.item(), null)
    if isinstance(value, np.ndarray):
        return _convert(value.tolist(), null)
    if isinstance(value, Mapping):
        return {str(k): _convert(v, null) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return [_convert(v, null) for v in sorted(value, key=repr)]
    if isinstance(value, (list, tuple)):
        return [_convert(v, null) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    if type(value).__module__.startswith("torch") and hasattr(value, "tolist"):
        return _convert(value.tolist(), null)
    return str(value)


def dumps(value: Any, **kwargs: Any) -> str:
    """Strict JSON text of ``value`` (:func:`to_jsonable` first; NaN → null); ``kwargs`` go to ``json.dumps``."""
    return json.dumps(to_jsonable(value), allow_nan=False, **kwargs)


def netcdf_attr(value: Any, *, strict: bool = False) -> Any:
    """A value netCDF can store: str / number / bool as is, a flat list of numbers as a 1-D array, the rest as JSON text.

    ``strict=True``: bools become 0 / 1, as classic netCDF has no boolean type
    (Sheet files keep them: they are written with h5netcdf's ``invalid_netcdf=True``).
    """
    if strict and isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (str, int, float, np.integer, np.floating, np.bool_)):
        return value
    if isinstance(value, (list, tuple, np.ndarray)):
        flat = isinstance(value, np.ndarray) or all(isinstance(v, (int, float, np.integer, np.floating)) for v in value)
        arr = np.asarray(value, dtype=float if len(value) == 0 else None) if flat else None
        if arr is not None and arr.ndim == 1 and arr.dtype.kind in "iufb":
            return arr.astype(np.int8) if strict and arr.dtype.kind == "b" else arr
    return json.dumps(to_jsonable(value, nonfinite="null"), sort_keys=True)


def netcdf_attrs(attrs: Mapping[str, Any], *, strict: bool = False) -> dict[str, Any]:
    """:func:`netcdf_attr` of every value, keys as str."""
    return {str(k): netcdf_attr(v, strict=strict) for k, v in attrs.items()}
