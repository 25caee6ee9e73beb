"""Statistics of two maps on a common grid: thresholded patches, overlap, RSA across categories."""
from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from scipy import ndimage

from ..errors import MapError
from ..grid import Grid


def otsu_threshold(values: np.ndarray) -> float:
    """Otsu's threshold of the finite values (scikit-image): the split that best separates two classes."""
    from skimage.filters import threshold_otsu

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size < 2 or np.ptp(v) == 0:
        raise MapError("the map is constant where it overlaps the other; no threshold separates patches.")
    return float(threshold_otsu(v))


def threshold_patches(image: np.ndarray, grid: Grid, threshold: float, min_area_mm2: float = 0.0) -> dict[str, Any]:
    """Connected regions (face-connected pixels) of ``image > threshold``.

    As :func:`cortexsim.analysis.patches` without smoothing, for 2-D and 3-D grids.

    Parameters
    ----------
    image : ndarray, the grid's array shape (array order), NaN = off the map
    grid : Grid
    threshold : float
    min_area_mm2 : regions smaller than this (mm², mm³ in 3-D) are dropped

    Returns
    -------
    dict: ``mask`` (bool, image shape: pixels of the kept regions), ``n`` (count),
    ``area_mm2`` (ndarray (n,), by decreasing area), ``centroids`` (ndarray (n, d), mm; each patch's centre of mass
    weighted by its value above the threshold).
    """
    with np.errstate(invalid="ignore"):
        above = np.nan_to_num(np.asarray(image, dtype=float), nan=-np.inf) > threshold
    labels, n = ndimage.label(above)
    px = grid.resolution_mm ** grid.ndim
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:] * px
    keep = np.flatnonzero(area >= min_area_mm2)
    keep = keep[np.argsort(-area[keep], kind="stable")]
    if len(keep):
        # weighted by the value above threshold: the patch's centre of mass, robust to a ragged noisy border
        weight = np.where(above, np.nan_to_num(np.asarray(image, dtype=float)) - threshold, 0.0)
        com = np.asarray(ndimage.center_of_mass(weight, labels, keep + 1), dtype=float).reshape(-1, grid.ndim)
        # array order (z, y, x) index → (x, y, z) mm
        centroids = np.asarray(grid.origin_mm) + com[:, ::-1] * grid.resolution_mm
    else:
        centroids = np.zeros((0, grid.ndim))
    return {"mask": np.isin(labels, keep + 1), "n": int(len(keep)), "area_mm2": area[keep], "centroids": centroids}


def dice_jaccard(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Dice ``2|A∩B| / (|A|+|B|)`` and Jaccard ``|A∩B| / |A∪B|`` of two bool masks (NaN if both empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    inter, total, union = int((a & b).sum()), int(a.sum() + b.sum()), int((a | b).sum())
    if union == 0:
        return float("nan"), float("nan")
    return 2.0 * inter / total, inter / union


def centroid_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean distance (mm) between one-to-one matched centroids (Hungarian assignment); NaN if one set is empty."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    if len(a) == 0 or len(b) == 0:
        return float("nan")
    d = cdist(a, b)
    rows, cols = linear_sum_assignment(d)
    return float(d[rows, cols].mean())


def _upper(m: np.ndarray) -> np.ndarray:
    return m[np.triu_indices(len(m), k=1)]


def rsa_maps(model: np.ndarray, target: np.ndarray, *, n_perm: int = 5000, seed: int | None = 0) -> dict[str, float]:
    """RSA of category maps: Kendall τ between the category × category map-correlation matrices.

    As TDANN compares selectivity maps across categories: for each map set, the Pearson
    correlation between every two category maps (across pixels); then Kendall's τ-b
    between the two matrices' upper triangles. The p-value permutes the category labels
    of the target (all C! orders when C ≤ 7, else ``n_perm`` random ones; a Mantel test).

    Parameters
    ----------
    model, target : ndarray (n_categories, n_pixels), same categories in the same order, finite

    Returns
    -------
    dict: ``kendall_tau``, ``p_value``, ``n_categories``
    """
    from scipy.stats import kendalltau

    model, target = np.asarray(model, float), np.asarray(target, float)
    c = len(model)
    if c < 3 or target.shape != model.shape:
        raise MapError(f"RSA needs ≥ 3 categories with maps on the same pixels in both; got {model.shape} and {target.shape}.")
    rm, rt = np.corrcoef(model), np.corrcoef(target)
    tau = float(kendalltau(_upper(rm), _upper(rt)).statistic)
    if math.factorial(c) <= 5040:
        orders = np.array(list(itertools.permutations(range(c))))
    else:
        rng = np.random.default_rng(seed)
        orders = np.array([rng.permutation(c) for _ in range(n_perm)])
    null = np.array([kendalltau(_upper(rm), _upper(rt[np.ix_(o, o)])).statistic for o in orders])
    null = np.nan_to_num(null, nan=0.0)
    p = float((np.sum(null >= tau - 1e-12) + (0 if math.factorial(c) <= 5040 else 1)) /
              (len(null) + (0 if math.factorial(c) <= 5040 else 1)))
    return {"kendall_tau": tau, "p_value": p, "n_categories": c}
