"""``ds.cortex``: domain helpers on a Sheet (xarray accessor)."""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .errors import SheetError


@xr.register_dataset_accessor("cortex")
class CortexAccessor:
    """Accessor registered as ``Dataset.cortex``.

    >>> ds.cortex.positions.shape      # (n_units, 2 | 3), mm
    >>> it = ds.cortex.area("IT")      # sub-Sheet of one area
    >>> img = ds.cortex.map(dprime)    # 2-D image of a per-unit value
    """

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    @property
    def areas(self) -> list[str]:
        """Area names in order of first appearance."""
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
        names = ["x_mm", "y_mm", "z_mm"][: self.ndim]
        return np.stack([np.asarray(self._ds[n].values, dtype=float) for n in names], axis=1)

    def area(self, name: str) -> xr.Dataset:
        """The sub-Sheet of one area (lazy if the Sheet is)."""
        mask = np.asarray(self._ds["area"].values).astype(str) == name
        if not mask.any():
            raise SheetError(f"no area {name!r} in this Sheet; areas are {self.areas}.")
        return self._ds.isel(unit=np.flatnonzero(mask))

    def map(
        self,
        values: Any,
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
        values : DataArray over ``unit`` or array (n_units,)
            e.g. a d′ map. Units of several areas should be mapped one area at a time.
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
