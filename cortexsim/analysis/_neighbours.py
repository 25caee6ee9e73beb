"""The one definition of "neighbours" of units on a sheet, used by Moran's I and the neighbour graphs.

* :func:`knn_pairs` — each unit's ``k`` nearest *other* units (itself dropped wherever the k-d tree
  lists it, so coincident units are handled): directed pairs (i, j), exactly k per unit.
  Moran's I uses them as its (asymmetric, PySAL-like) binary weights; the neighbour graph and the
  clustering index use their symmetric union (i ~ j when j is among i's k nearest, or i among j's).
* :func:`radius_pairs` — every pair closer than ``radius_mm`` (each pair once, i < j).
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from ..errors import ParameterError

#: k of the k-NN neighbourhood when neither a radius nor k is given (8: the grid's 8-neighbourhood).
DEFAULT_K = 8


def knn_pairs(pos: np.ndarray, k: int, *, clip: bool = False) -> np.ndarray:
    """Directed pairs (n·k, 2) of unit indices: row i's k nearest other units, nearest first.

    ``clip``: on a sheet of ``n <= k`` units take the n − 1 others instead of raising.
    """
    pos = np.asarray(pos, float)
    n = len(pos)
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ParameterError(f"k must be an integer >= 1; got {k!r}.")
    k = int(k)
    if k > n - 1:
        if not clip or n < 2:
            raise ParameterError(f"k must be an integer in [1, n_units - 1] = [1, {n - 1}]; got {k!r}.")
        k = n - 1
    _, nbr = cKDTree(pos).query(pos, k=k + 1)
    nbr = np.asarray(nbr).reshape(n, k + 1)
    not_self = nbr != np.arange(n)[:, None]
    keep = not_self & (np.cumsum(not_self, axis=1) <= k)  # the k first others (self usually column 0)
    return np.stack([np.repeat(np.arange(n), k), nbr[keep]], axis=1).astype(np.int64)


def radius_pairs(pos: np.ndarray, radius_mm: float) -> np.ndarray:
    """Pairs (E, 2), i < j, of units closer than ``radius_mm`` (mm)."""
    if not radius_mm > 0:
        raise ParameterError(f"radius_mm must be > 0; got {radius_mm!r}.")
    return cKDTree(np.asarray(pos, float)).query_pairs(float(radius_mm), output_type="ndarray").astype(np.int64)


def undirected(pairs: np.ndarray) -> np.ndarray:
    """Each unordered pair once, (i, j) with i < j, sorted."""
    if not len(pairs):
        return np.zeros((0, 2), np.int64)
    return np.unique(np.sort(pairs, axis=1), axis=0)
