"""``ds.cortex`` / ``d.cortex``: domain helpers on a Sheet and on per-unit results (xarray accessors).

The same accessor serves a Sheet (Dataset) and a per-unit DataArray (d′, preference ...), so a
per-unit result need not be wrapped in a Dataset: ``d.cortex.area("IT").cortex.map()``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .errors import SheetError


@xr.register_dataset_accessor("cortex")
@xr.register_dataarray_accessor("cortex")
class CortexAccessor:
    """Accessor registered as ``Dataset.cortex`` and ``DataArray.cortex``.

    >>> ds.cortex.positions.shape      # (n_units, 2 | 3), mm
    >>> it = ds.cortex.area("IT")      # sub-Sheet of one area
    >>> img = ds.cortex.map(dprime)    # 2-D image of a per-unit value
    >>> d.cortex.area("IT").cortex.map()   # a per-unit DataArray maps itself
    """

    def __init__(self, ds: xr.Dataset | xr.DataArray) -> None:
        self._ds = ds

    def _need_units(self, what: str) -> None:
        if "unit" not in self._ds.dims:
            raise SheetError(f"{what} needs a Sheet or a per-unit result (a 'unit' dim); got dims {tuple(self._ds.dims)}.")
        missing = [c for c in ("x_mm", "y_mm") if c not in self._ds.coords] if what != "area()" else (
            [] if "area" in self._ds.coords else ["area"])
        if missing:
            raise SheetError(f"{what} needs the unit coords {missing}; keep the Sheet's unit coords on the result.")

    @property
    def areas(self) -> list[str]:
        """Area names in order of first appearance."""
        self._need_units("area()")
        names = np.asarray(self._ds["area"].values).astype(str)
        _, first = np.unique(names, return_index=True)
        return [str(names[i]) for i in sorted(first)]

    @property
    def ndim(self) -> int:
        """2 for flat sheets, 3 when the layout has a ``z_mm`` coord."""
        return 3 if "z_mm" in self._ds.coords else 2

    @property
    def positions(self) -> np.ndarray:
        """Unit positions, ndarray (n_units, 2 | 3) in mm (columns x, y[, z])."""
        self._need_units("positions")
        names = ["x_mm", "y_mm", "z_mm"][: self.ndim]
        return np.stack([np.asarray(self._ds[n].values, dtype=float) for n in names], axis=1)

    def area(self, name: str) -> xr.Dataset | xr.DataArray:
        """The units of one area: a sub-Sheet, or the part of a per-unit result (lazy if the Sheet is)."""
        self._need_units("area()")
        mask = np.asarray(self._ds["area"].values).astype(str) == name
        if not mask.any():
            raise SheetError(f"no area {name!r} in this Sheet; areas are {self.areas}.")
        return self._ds.isel(unit=np.flatnonzero(mask))

    def map(
        self,
        values: Any = None,
        *,
        resolution_mm: float | None = None,
        statistic: str = "mean",
        origin_mm: Any = None,
    ) -> xr.DataArray:
        """Render a per-unit value as a 2-D image on the sheet (x/y in mm).

        A thin wrapper of :func:`cortexsim.grid.rasterize` on this Sheet's positions
        (3-D layouts are projected onto their x–y plane): every unit falls in
        exactly one pixel, pixel centres lie at ``origin + k·resolution``.

        Parameters
        ----------
        values : DataArray over ``unit`` or array (n_units,), optional
            e.g. a d′ map. Units of several areas should be mapped one area at a time.
            Default on a per-unit DataArray: the DataArray itself (``d.cortex.map()``).
        resolution_mm : float, optional
            Pixel size. Default: the median nearest-neighbour distance between units,
            so a regular grid maps one unit per pixel.
        statistic : {"mean", "median", "sum", "count", "min", "max", "std", "mode"}
            How units falling in one pixel are combined.
        origin_mm : (x, y), optional
            A pixel centre (default: the smallest unit coordinates).

        Returns
        -------
        DataArray, dims (y_mm, x_mm), NaN where no unit falls; attrs ``resolution_mm``
        and ``affine`` (pixel index (i, j) along (x, y) → mm).
        """
        from .grid import rasterize

        if values is None:
            if not isinstance(self._ds, xr.DataArray):
                raise SheetError("ds.cortex.map() on a Sheet needs the values to map: ds.cortex.map(d).")
            values = self._ds
        v = values.values if isinstance(values, xr.DataArray) else values
        v = np.asarray(v)
        if v.shape != (self._ds.sizes["unit"],):
            raise SheetError(f"map() needs one value per unit ({self._ds.sizes['unit']}); got shape {v.shape}.")
        out = rasterize(v, self.positions[:, :2], resolution_mm=resolution_mm, statistic=statistic,
                        origin_mm=origin_mm, name=getattr(values, "name", None))
        attrs = getattr(values, "attrs", {}) or {}
        out.attrs["units"] = attrs.get("units", "")
        if "long_name" in attrs:
            out.attrs["long_name"] = attrs["long_name"]
        return out
