"""NaN-aware smoothing, sheet masks and resampling of scattered units onto a grid.

Re-exported by :mod:`cortexsim.grid` (the grid convention is described there).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from .errors import SheetError
from .geometry import FWHM_PER_SIGMA, RESAMPLING, Grid, unit_spacing
from .raster import bin_units


def smooth_nan(image: np.ndarray, sigma_px: float, axes: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """NaN-aware Gaussian smoothing (normalised convolution) along ``axes``.

    Returns ``(G*(v·m) / G*m, G*m)`` with ``m`` the finite-pixel mask: each output
    pixel is the Gaussian-weighted mean of the defined pixels around it, so empty
    pixels and the sheet's edge do not pull values towards zero. The second array
    (the local weight) lets callers decide where the result is defined. Leading
    axes not in ``axes`` (e.g. stimuli) are smoothed independently.
    """
    img = np.asarray(image, dtype=float)
    axes = tuple(range(img.ndim)) if axes is None else tuple(axes)
    sigma = [float(sigma_px) if a in axes else 0.0 for a in range(img.ndim)]
    mask = np.isfinite(img)
    num = ndimage.gaussian_filter(np.where(mask, img, 0.0), sigma, mode="constant")
    den = ndimage.gaussian_filter(mask.astype(float), sigma, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[den <= 1e-12] = np.nan
    return out, den


def sheet_mask(positions: np.ndarray, points: np.ndarray, mask: Any = "distance", distance_mm: float | None = None,
               spacing_mm: float | None = None, grid_mm: float = 0.0) -> np.ndarray:
    """Which ``points`` lie on the sheet spanned by ``positions`` (bool, one per point).

    ``"distance"``: within ``distance_mm`` of a unit; default ``√d / 2 · max(s,
    grid_mm) + s`` with ``s`` the unit spacing, i.e. every pixel that
    holds a unit and every point of the sheet's footprint (``s`` from
    :func:`unit_spacing`; the random gaps of an irregular sheet are bridged,
    holes a few spacings wide stay empty).
    ``"hull"``: inside the convex hull of the units. ``None``: all.
    """
    if mask is None:
        return np.ones(len(points), dtype=bool)
    if mask == "distance":
        d = positions.shape[1]
        if distance_mm is None:
            spacing = unit_spacing(positions) if spacing_mm is None else spacing_mm
            distance_mm = (np.sqrt(d) / 2 * max(spacing, grid_mm) + spacing) * (1 + 1e-9)
        dist, _ = cKDTree(positions).query(points, k=1, distance_upper_bound=distance_mm)
        return np.isfinite(dist)
    if mask == "hull":
        from scipy.spatial import ConvexHull, QhullError

        try:
            hull = ConvexHull(positions)
        except QhullError as exc:
            raise SheetError(f"the units span no {positions.shape[1]}-D hull (collinear or too few); use mask='distance'.") from exc
        # inside = on the inner side of every facet plane (normal · p + offset <= 0)
        scale = float(np.ptp(positions, axis=0).max()) or 1.0
        return np.all(points @ hull.equations[:, :-1].T + hull.equations[:, -1] <= 1e-9 * scale, axis=1)
    raise ValueError(f"mask must be 'distance', 'hull' or None; got {mask!r}.")


def one_blas_thread():
    """Context: BLAS on one thread, for the many tiny LAPACK solves of scipy.spatial.

    ``Delaunay.transform`` (used by ``find_simplex`` and ``LinearNDInterpolator``)
    solves one d×d system per simplex; with OpenBLAS threads on a busy 2-core
    machine those took 5-40 s instead of 0.02 s for 8,000 triangles here.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def resample(
    values: np.ndarray,
    positions: np.ndarray,
    grid: Grid,
    method: str = "nearest",
    *,
    fwhm_mm: float | None = None,
    mask: Any = "distance",
    mask_distance_mm: float | None = None,
) -> np.ndarray:
    """Resample scattered per-unit values onto the centres of ``grid``.

    Parameters
    ----------
    values : ndarray (n_units,) or (n_units, n_maps)
    positions : ndarray (n_units, grid.ndim), mm
    grid : Grid
    method : {"nearest", "linear", "gaussian", "mean"}
        ``nearest``: a pixel holding units takes the one nearest its centre, an empty
        pixel the nearest unit anywhere (labels stay labels);
        ``linear``: barycentric interpolation on the Delaunay triangulation of the units;
        ``gaussian``: Gaussian-weighted mean of the units within 3σ of the centre
        (FWHM ``fwhm_mm``, default the pixel size); ``mean``: average of the units
        inside each pixel (:func:`rasterize`).
    mask : {"distance", "hull", None} or bool ndarray (grid.size,)
        Pixels off the sheet become NaN (see :func:`sheet_mask`).

    Returns
    -------
    ndarray (grid.size,) or (grid.size, n_maps) in the flat (C) order of the image.
    """
    if method not in RESAMPLING:
        raise ValueError(f"method must be one of {RESAMPLING}; got {method!r}.")
    v = np.asarray(values, dtype=float)
    squeeze = v.ndim == 1
    v = v[:, None] if squeeze else v
    pos = np.asarray(positions, dtype=float)[:, : grid.ndim]
    centres = grid.centres()
    ok = np.isfinite(v).all(axis=1)
    if not ok.any():
        raise SheetError("every value of the map is NaN; nothing to resample.")
    pos_ok, v_ok = pos[ok], v[ok]
    if method == "nearest":
        # A pixel holding units takes the one nearest its centre (so it holds that unit's value even
        # when a unit of the next pixel is closer); an empty pixel takes the nearest unit anywhere.
        flat = grid.flat_index(pos_ok)
        inside = np.flatnonzero(flat >= 0)
        dist = np.linalg.norm(pos_ok[inside] - centres[flat[inside]], axis=1)
        order = inside[np.lexsort((dist, flat[inside]))]
        first = order[np.r_[True, np.diff(flat[order]) != 0]] if len(order) else order
        idx = np.full(grid.size, -1, dtype=np.int64)
        idx[flat[first]] = first
        empty = np.flatnonzero(idx < 0)
        if empty.size:
            idx[empty] = cKDTree(pos_ok).query(centres[empty], k=1)[1]
        out = v_ok[idx]
    elif method == "mean":
        flat = grid.flat_index(pos_ok)
        out = np.stack([bin_units(v_ok[:, m], flat, grid.size, "mean")[0] for m in range(v.shape[1])], axis=1)
    elif method == "linear":
        from scipy.spatial import Delaunay, QhullError

        with one_blas_thread():
            try:
                tri = Delaunay(pos_ok)
            except QhullError as exc:
                raise SheetError("linear resampling needs units that span an area (not a line); "
                                 "use method='nearest'.") from exc
            simplex = tri.find_simplex(centres)
            found = np.maximum(simplex, 0)
            t = tri.transform[found]  # (size, d + 1, d): barycentric transforms
        b = np.einsum("nij,nj->ni", t[:, : grid.ndim], centres - t[:, grid.ndim])
        weights = np.c_[b, 1.0 - b.sum(axis=1)]
        out = np.einsum("nk,nkm->nm", weights, v_ok[tri.simplices[found]])
        out[simplex < 0] = np.nan
    else:
        fwhm = grid.resolution_mm if fwhm_mm is None else float(fwhm_mm)
        if not fwhm > 0:
            raise ValueError(f"fwhm_mm must be > 0 mm for gaussian resampling; got {fwhm_mm}.")
        sigma = fwhm / FWHM_PER_SIGMA
        pairs = cKDTree(centres).sparse_distance_matrix(cKDTree(pos_ok), 3 * sigma, output_type="coo_matrix")
        w = np.exp(-0.5 * (pairs.data / sigma) ** 2)  # coo keeps zero distances (unit on a centre)
        rows, cols = pairs.row, pairs.col
        den = np.bincount(rows, w, grid.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.stack([np.bincount(rows, w * v_ok[cols, m], grid.size) for m in range(v.shape[1])], axis=1) / den[:, None]
    if isinstance(mask, np.ndarray):
        inside = np.asarray(mask, dtype=bool).ravel()
        if inside.shape != (grid.size,):
            raise SheetError(f"a mask array must hold one bool per pixel ({grid.size}); got shape {mask.shape}.")
    else:
        inside = sheet_mask(pos_ok, centres, mask, mask_distance_mm, grid_mm=grid.resolution_mm)
    out = np.array(out, dtype=float)
    out[~inside] = np.nan
    return out[:, 0] if squeeze else out
