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
    ) -> xr.DataArray:
        """Render a per-unit value as a 2-D image on the sheet (x/y in mm).

        Parameters
        ----------
        values : DataArray over ``unit`` or array (n_units,)
            e.g. a d′ map. Units of several areas should be mapped one area at a time.
        resolution_mm : float, optional
            Pixel size. Default: the median nearest-neighbour distance between units,
            so a regular grid maps one unit per pixel.
        statistic : {"mean", "median", "max", "min", "count"}
            How units falling in one pixel are combined (scipy ``binned_statistic_2d``).

        Returns
        -------
        DataArray, dims (y_mm, x_mm), NaN where no unit falls.
        """
        from scipy.spatial import cKDTree
        from scipy.stats import binned_statistic_2d

        v = np.asarray(values.values if isinstance(values, xr.DataArray) else values, dtype=float)
        pos = self.positions[:, :2]
        if v.shape != (len(pos),):
            raise SheetError(f"map() needs one value per unit ({len(pos)}); got shape {v.shape}.")
        if resolution_mm is None:
            d, _ = cKDTree(pos).query(pos, k=2)
            nn = d[:, 1][d[:, 1] > 0]
            resolution_mm = float(np.median(nn)) if nn.size else 1.0
        lo, hi = pos.min(axis=0), pos.max(axis=0)
        nx, ny = (np.floor((hi - lo) / resolution_mm).astype(int) + 1).tolist()
        edges_x = lo[0] - resolution_mm / 2 + resolution_mm * np.arange(nx + 1)
        edges_y = lo[1] - resolution_mm / 2 + resolution_mm * np.arange(ny + 1)
        stat = binned_statistic_2d(pos[:, 0], pos[:, 1], v, statistic=statistic, bins=[edges_x, edges_y])
        img = stat.statistic.T  # binned_statistic_2d returns (x, y)
        if statistic == "count":
            img = img.astype(float)
        return xr.DataArray(
            img,
            dims=("y_mm", "x_mm"),
            coords={"y_mm": (edges_y[:-1] + edges_y[1:]) / 2, "x_mm": (edges_x[:-1] + edges_x[1:]) / 2},
            attrs={"resolution_mm": resolution_mm, "units": getattr(values, "attrs", {}).get("units", "")},
            name=getattr(values, "name", None),
        )
