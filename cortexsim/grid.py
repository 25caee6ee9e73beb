"""Regular mm grids for per-unit maps: the one raster routine of cortexsim.

Every map that leaves the unit level — ``ds.cortex.map``, the patch and pinwheel
analyses, the figures, NIfTI export and the brain-map comparison — goes through
:func:`rasterize` / :class:`Grid`, so they all agree on one convention:

* pixel (voxel) centres lie at ``origin_mm + k · resolution_mm`` (k = 0, 1, …) on
  each axis; pixel k spans ``[centre − res/2, centre + res/2)``, so every unit
  falls in exactly one pixel (``k = floor((p − origin) / res + 1/2)``);
* by default ``origin_mm`` is the smallest unit coordinate on each axis and the
  grid is just large enough to hold every unit, so a regular sheet rasterised at
  its own spacing maps one unit per pixel;
* images are DataArrays with dims ``(y_mm, x_mm)`` (``(z_mm, y_mm, x_mm)`` in 3-D),
  i.e. row = y, as matplotlib's ``imshow(origin="lower")`` expects, while the
  affine follows NIfTI: it maps the index vector ``(i, j, k, 1)`` with ``i`` along
  x, ``j`` along y, ``k`` along z to mm. A flat sheet lies in the plane z = 0.

The code lives by concern in :mod:`cortexsim.geometry` (:class:`Grid`, unit positions and
spacing), :mod:`cortexsim.raster` (binning, :func:`rasterize`, :func:`sample`) and
:mod:`cortexsim.resampling` (:func:`smooth_nan`, :func:`sheet_mask`, :func:`resample`); every
name stays importable from here.
"""
from __future__ import annotations

from .geometry import (  # noqa: F401 - the public names of cortexsim.grid
    _AXES, FWHM_PER_SIGMA, MAX_PIXELS, RESAMPLING, STATISTICS, Grid, _values_and_positions, default_resolution,
    unit_positions, unit_spacing,
)
from .raster import bin_units, rasterize, sample  # noqa: F401
from .resampling import one_blas_thread, resample, sheet_mask, smooth_nan  # noqa: F401

__all__ = ["FWHM_PER_SIGMA", "MAX_PIXELS", "RESAMPLING", "STATISTICS", "Grid", "bin_units", "default_resolution",
           "one_blas_thread", "rasterize", "resample", "sample", "sheet_mask", "smooth_nan", "unit_positions",
           "unit_spacing"]
