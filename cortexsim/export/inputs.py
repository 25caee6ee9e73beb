"""Collect the per-unit maps handed to an exporter into one table: values, positions, names.

Accepted inputs (all keep the Sheet's unit coords ``x_mm``, ``y_mm`` [, ``z_mm``], ``area``):

* a per-unit DataArray (dims ``("unit",)``), e.g. ``analysis.dprime(...)``;
* a DataArray with one more dim, e.g. ``analysis.selectivity(...)`` (category, unit):
  one map per entry of that dim;
* a Dataset of per-unit variables, e.g. the ``units_<area>.nc`` written by
  ``cortexsim analyze``;
* a list or dict of per-unit DataArrays on the same units.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from ..errors import MapError, SheetError
from ..grid import unit_positions


@dataclass
class UnitMaps:
    """Several maps on the same units.

    Attributes
    ----------
    names : list of str, one per map
    values : list of ndarray (n_units,), numeric or str (categorical)
    positions : ndarray (n_units, 2 | 3), mm
    attrs : list of dict, the maps' own attrs
    area : str or None
    """

    names: list[str]
    values: list[np.ndarray]
    positions: np.ndarray
    attrs: list[dict[str, Any]] = field(default_factory=list)
    area: str | None = None

    @property
    def ndim(self) -> int:
        return int(self.positions.shape[1])

    def categorical(self) -> list[bool]:
        """Which maps hold labels (str / object values, or ``categorical`` in attrs)."""
        return [is_categorical(v, a) for v, a in zip(self.values, self.attrs)]

    def numeric(self) -> np.ndarray:
        """The maps as a float array (n_units, n_maps)."""
        return np.stack([np.asarray(v, dtype=float) for v in self.values], axis=1)

    def subset(self, index: Sequence[int]) -> UnitMaps:
        return UnitMaps([self.names[i] for i in index], [self.values[i] for i in index], self.positions,
                        [self.attrs[i] for i in index], self.area)


def is_categorical(values: np.ndarray, attrs: Mapping[str, Any] | None = None) -> bool:
    """Labels rather than quantities: string/object dtype, or ``attrs["categorical"]`` true."""
    return np.asarray(values).dtype.kind in "OUSb" or bool((attrs or {}).get("categorical", False))


def _plain_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        if isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, np.generic):
            v = v.item()
        out[str(k)] = v
    return out


def _split(da: xr.DataArray, default_name: str) -> list[tuple[str, xr.DataArray]]:
    if "unit" not in da.dims:
        raise MapError(f"map {da.name or default_name!r} has dims {da.dims}; a per-unit map needs the dim 'unit'.")
    name = str(da.name) if da.name is not None else default_name
    if da.ndim == 1:
        return [(name, da)]
    if da.ndim != 2:
        raise MapError(f"map {name!r} has dims {da.dims}; export takes (unit,) or (category, unit) maps.")
    other = next(d for d in da.dims if d != "unit")
    labels = da[other].values.tolist() if other in da.coords else list(range(da.sizes[other]))
    return [(f"{name}_{lab}", da.isel({other: i}).drop_vars(other, errors="ignore")) for i, lab in enumerate(labels)]


def _select_area(da: xr.DataArray, area: str | None) -> xr.DataArray:
    if "area" not in da.coords:
        return da
    names = np.asarray(da["area"].values).astype(str)
    present = list(dict.fromkeys(names.tolist()))
    if area is None:
        if len(present) > 1:
            raise MapError(f"the map mixes areas {present}; each area is its own sheet. Pass area=<one of them>.")
        return da
    if area not in present:
        raise MapError(f"no area {area!r} in the map; its areas are {present}.")
    return da.isel(unit=np.flatnonzero(names == area))


def collect_maps(maps: Any, area: str | None = None, names: Sequence[str] | None = None) -> UnitMaps:
    """Normalise any accepted input (see the module docstring) to :class:`UnitMaps`.

    Parameters
    ----------
    maps : DataArray, Dataset, list or dict of DataArrays
    area : str, optional
        Keep only this area (needed when the input holds several).
    names : list of str, optional
        For a Dataset: the variables to take (default: every per-unit variable).

    Raises
    ------
    MapError
        No per-unit map, mixed areas, maps on different units, a single unit.
    """
    items: list[tuple[str, xr.DataArray]] = []
    if isinstance(maps, xr.Dataset):
        wanted = list(names) if names is not None else [n for n, v in maps.data_vars.items() if "unit" in v.dims]
        missing = [n for n in wanted if n not in maps.data_vars]
        if missing:
            raise MapError(f"no variable {missing} in the Dataset; its per-unit variables are "
                           f"{[n for n, v in maps.data_vars.items() if 'unit' in v.dims]}.")
        for n in wanted:
            items += _split(maps[n], str(n))
    elif isinstance(maps, xr.DataArray):
        items = _split(maps, "map")
    elif isinstance(maps, Mapping):
        for n, da in maps.items():
            items += _split(da.rename(str(n)) if isinstance(da, xr.DataArray) else da, str(n))
    elif isinstance(maps, (list, tuple)) and all(isinstance(m, xr.DataArray) for m in maps):
        for i, da in enumerate(maps):
            items += _split(da, f"map{i}")
    else:
        raise MapError(
            f"cannot export a {type(maps).__name__}: pass a per-unit DataArray (with x_mm / y_mm coords), "
            f"a (category, unit) DataArray, a Dataset of per-unit maps, or a list/dict of them."
        )
    if not items:
        raise MapError("no per-unit map to export (no variable has the dim 'unit').")
    items = [(n, _select_area(da, area)) for n, da in items]
    try:
        pos = unit_positions(items[0][1])
    except SheetError as exc:
        raise MapError(f"map {items[0][0]!r}: {exc}") from exc
    for n, da in items[1:]:
        other = unit_positions(da)
        if other.shape != pos.shape or not np.allclose(other, pos):
            raise MapError(f"maps {items[0][0]!r} and {n!r} are on different units; export them separately.")
    if len(pos) < 2:
        raise MapError(f"map {items[0][0]!r} has {len(pos)} unit; a map needs at least 2 units to span a sheet.")
    areas = np.unique(np.asarray(items[0][1]["area"].values).astype(str)) if "area" in items[0][1].coords else []
    attrs = []
    for _, da in items:
        a = _plain_attrs(da.attrs)
        for key in ("classes",):
            if isinstance(a.get(key), str):
                try:
                    a[key] = json.loads(a[key])
                except ValueError:
                    pass
        attrs.append(a)
    return UnitMaps([n for n, _ in items], [np.asarray(da.values) for _, da in items], pos, attrs,
                    str(areas[0]) if len(areas) == 1 else area)
