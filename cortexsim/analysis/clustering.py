"""Reset clustering and topography indices (Hannagan et al., supplementary material S1).

**Clustering index.** For each class c of a preference map M, take the units
preferring c and their connected components on the sheet; the clustering of c
is the mean number of units per component. C_M is the mean of that over the
classes present ("the average size, over all target classes, of the connected
components on the grid for this class"). The control C_s(M) is the same
quantity on maps whose preferences are randomly permuted across units,
**averaged over the n_perm permutations**; the index is C_M − C_s(M).

**Topography index** (ordered classes, e.g. numbers). With p(x) the rank of
unit x's preferred class among the n ordered classes and v(x) its neighbours
that have a preference::

    T_M = ⟨ n − ⟨|p(x) − p(y)|⟩_{y ∈ v(x)} ⟩_{x ∈ M}

(proximity of a unit's preference to its neighbours'; units without a
preference, or without any neighbour with one, are left out). The index is
T_M − ⟨T_s(M)⟩ over permuted maps.

Notes
-----
* Adjacency: on a regular grid the clustering index uses **4-neighbour**
  components (as the reference code's ``connectivity = 4``) and the topography
  index the **8 immediate neighbours** (as the paper states); both can be changed.
  Irregular sheets use a radius or k-NN neighbour graph (:mod:`.graphs`).
* The reference implementation summed 10 shuffled maps but divided by 20,
  halving the control and inflating the index; here the control is the plain
  mean over ``n_perm`` permutations, and the whole null distribution is returned.
* The paper reports |C_M − C_s(M)|; the signed difference is returned here
  (negative means less clustered than chance).
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from tqdm.auto import tqdm

from ..errors import SheetError
from ._common import grid_rowcol, unit_coords
from .graphs import neighbour_edges
from .preference import NONE, preference_map

_NUMBER_VARS = ("preferred_numerosity", "preference")


def _sort_classes(labels: list[str]) -> list[str]:
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


def preference_codes(pref: xr.DataArray, none: str = NONE) -> tuple[np.ndarray, list[str]]:
    """Integer class codes (n_units,) of a preference map (-1: no preference) and the ordered classes.

    String maps use ``attrs["classes"]`` for the order when present (numeric
    labels sort numerically otherwise); numeric maps (e.g. preferred numerosity)
    treat NaN as no preference and order classes by value.
    """
    if pref.dims != ("unit",):
        raise SheetError(f"a preference map must be a DataArray over ('unit',); got dims {pref.dims}.")
    values = np.asarray(pref.values)
    if values.dtype.kind in "iuf":
        ok = np.isfinite(values.astype(float))
        uniq = np.unique(values[ok])
        codes = np.full(values.shape, -1, dtype=np.int64)
        codes[ok] = np.searchsorted(uniq, values[ok])
        return codes, [str(v) for v in uniq.tolist()]
    labels = values.astype(str)
    none = str(pref.attrs.get("none", none))
    classes = pref.attrs.get("classes")
    if isinstance(classes, str):  # attrs round-tripped through a file as JSON
        classes = json.loads(classes)
    present = sorted(set(labels.tolist()) - {none})
    classes = [str(c) for c in classes] if classes is not None else _sort_classes(present)
    unknown = sorted(set(present) - set(classes))
    if unknown:
        raise SheetError(f"preference labels {unknown} are not in the map's classes {classes}.")
    lookup = {c: i for i, c in enumerate(classes)}
    uniq, inverse = np.unique(labels, return_inverse=True)  # loop below runs over the few distinct labels
    codes = np.array([lookup.get(s, -1) for s in uniq.tolist()], dtype=np.int64)[inverse.ravel()]
    return codes, classes


def _preference_input(obj: Any, by: str, threshold: float, none: str) -> xr.DataArray:
    if isinstance(obj, xr.Dataset):
        if "responses" in obj.data_vars:
            return preference_map(obj, by=by, threshold=threshold, none=none)
        for name in _NUMBER_VARS:
            if name in obj.data_vars:
                return obj[name]
        raise SheetError(f"expected a Sheet, a preference DataArray or a number_map Dataset; got variables {list(obj.data_vars)}.")
    if isinstance(obj, xr.DataArray):
        return obj
    raise TypeError(f"expected a Sheet or a preference DataArray; got {type(obj).__name__}.")


def _grid_image(rc: tuple[np.ndarray, np.ndarray]) -> tuple[tuple[int, int], np.ndarray]:
    row, col = rc
    return (int(row.max()) + 1, int(col.max()) + 1), row * (int(col.max()) + 1) + col


def _components_grid(codes: np.ndarray, n_classes: int, shape: tuple[int, int], flat: np.ndarray, connectivity: int) -> np.ndarray:
    """Number of connected components per class on a grid (scipy.ndimage.label)."""
    img = np.full(shape[0] * shape[1], -1, dtype=np.int64)
    img[flat] = codes
    img = img.reshape(shape)
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    # a loop over the few classes; each label call is vectorised over the whole grid
    return np.array([ndimage.label(img == c, structure=structure)[1] for c in range(n_classes)], dtype=np.int64)


def _components_graph(codes: np.ndarray, n_classes: int, edges: np.ndarray) -> np.ndarray:
    """Number of connected components per class on a neighbour graph (csgraph)."""
    n = len(codes)
    ci, cj = codes[edges[:, 0]], codes[edges[:, 1]]
    keep = (ci == cj) & (ci >= 0)
    e = edges[keep]
    adj = coo_matrix((np.ones(len(e), dtype=np.int8), (e[:, 0], e[:, 1])), shape=(n, n))
    n_comp, comp = connected_components(adj, directed=False)
    valid = codes >= 0
    comp_class = np.full(n_comp, -1, dtype=np.int64)
    comp_class[comp[valid]] = codes[valid]
    return np.bincount(comp_class[comp_class >= 0], minlength=n_classes)


def _perm_codes(codes: np.ndarray, n_perm: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [codes] + [rng.permutation(codes) for _ in range(n_perm)]


def _null_summary(observed: float, null: np.ndarray) -> dict[str, Any]:
    return {
        "index": ((), observed - float(null.mean())),
        "observed": ((), observed),
        "null_mean": ((), float(null.mean())),
        "null_std": ((), float(null.std(ddof=1)) if len(null) > 1 else np.nan),
        "p_value": ((), float((1 + np.sum(null >= observed)) / (1 + len(null)))),
        "null": (("perm",), null),
    }


def _adjacency(pref: xr.DataArray, grid: bool | None, radius_mm: float | None, k: int | None, connectivity: int):
    rc = grid_rowcol(pref)
    use_grid = grid if grid is not None else (rc is not None and radius_mm is None and k is None)
    if use_grid and rc is None:
        raise SheetError("grid=True but the units are not on a regular grid (row/col); pass radius_mm= or k=.")
    if use_grid:
        return rc, None, {"adjacency": f"grid{connectivity}"}
    edges, info = neighbour_edges(pref, radius_mm=radius_mm, k=k, grid=False)
    return None, edges, info


def clustering_index(
    pref: xr.DataArray | xr.Dataset,
    n_perm: int = 20,
    seed: int = 0,
    *,
    by: str = "domain",
    threshold: float = 2.0,
    connectivity: int = 4,
    grid: bool | None = None,
    radius_mm: float | None = None,
    k: int | None = None,
    none: str = NONE,
    progress: bool = False,
) -> xr.Dataset:
    """Reset clustering index of a preference map, against permuted maps.

    Parameters
    ----------
    pref : DataArray (unit,) of preference labels (:func:`preference_map`), or a
        Sheet (then ``preference_map(pref, by, threshold)`` is computed first)
    n_perm : int
        Permuted maps for the control (Reset: 20).
    seed : int
        Seed of the permutations (numpy ``default_rng``).
    by, threshold : used only for a Sheet input
    connectivity : 4 or 8
        Grid neighbourhood (default 4, as the reference code).
    grid, radius_mm, k : adjacency (see :func:`~cortexsim.analysis.graphs.neighbour_edges`);
        default: the grid when units tile one, else k-NN with k = 8.
    none : label of units without preference (left out of every class)
    progress : show a tqdm bar over permutations

    Returns
    -------
    Dataset with scalars ``index`` (observed − null_mean), ``observed`` (C_M),
    ``null_mean`` (C_s(M)), ``null_std``, ``p_value`` (one-sided, (1 + #null ≥ observed)/(1 + n_perm));
    ``null`` (perm,); per class ``observed_per_class``, ``n_components``, ``n_units``;
    ``null_per_class`` (perm, class). Attrs: adjacency, n_perm, seed.
    """
    if n_perm < 1:
        raise ValueError(f"n_perm must be >= 1; got {n_perm}.")
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8; got {connectivity!r}.")
    pref = _preference_input(pref, by, threshold, none)
    codes, classes = preference_codes(pref, none)
    n_units = np.bincount(codes[codes >= 0], minlength=len(classes))
    present = n_units > 0
    if not present.any():
        raise SheetError(
            f"no unit has a preference (all {none!r}); the clustering index is undefined. "
            f"Lower the threshold or check the selectivity."
        )
    rc, edges, info = _adjacency(pref, grid, radius_mm, k, connectivity)
    if rc is not None:
        shape, flat = _grid_image(rc)
        count = lambda c: _components_grid(c, len(classes), shape, flat, connectivity)  # noqa: E731
    else:
        count = lambda c: _components_graph(c, len(classes), edges)  # noqa: E731
    perms = _perm_codes(codes, n_perm, seed)
    n_comp = np.stack([count(c) for c in tqdm(perms, desc="clustering index", disable=not progress)])
    with np.errstate(invalid="ignore", divide="ignore"):
        sizes = n_units[None, :] / n_comp  # (1 + n_perm, class); NaN for absent classes
    per_map = sizes[:, present].mean(axis=1)
    data = _null_summary(float(per_map[0]), per_map[1:])
    data.update(
        observed_per_class=(("class",), sizes[0]),
        n_components=(("class",), n_comp[0]),
        n_units=(("class",), n_units),
        null_per_class=(("perm", "class"), sizes[1:]),
    )
    return xr.Dataset(
        data,
        coords={"class": classes, "perm": np.arange(n_perm)},
        attrs={
            **info,
            "n_perm": n_perm,
            "seed": seed,
            "definition": "mean over classes of the mean same-preference component size, minus the mean over "
            "permuted maps (control averaged over n_perm; no halving)",
        },
    )


def topography_index(
    ds_or_pref: xr.Dataset | xr.DataArray,
    n_perm: int = 20,
    seed: int = 0,
    *,
    by: str = "numerosity",
    threshold: float = 2.0,
    connectivity: int = 8,
    grid: bool | None = None,
    radius_mm: float | None = None,
    k: int | None = None,
    none: str = NONE,
    progress: bool = False,
) -> xr.Dataset:
    """Reset topography index T_M − ⟨T_s(M)⟩ for ordered preferences (numbers).

    Parameters
    ----------
    ds_or_pref : Sheet (preferences computed with ``preference_map(ds, by, threshold)``),
        a preference DataArray (ordered by ``attrs["classes"]`` or numerically), a
        numeric per-unit DataArray (NaN = none), or a :func:`number_map` Dataset
    n_perm, seed : permutations of the control
    connectivity : grid neighbourhood, 8 (default, the paper's "8 immediate neighbors") or 4
    grid, radius_mm, k, none, progress : as :func:`clustering_index`

    Returns
    -------
    Dataset with ``index``, ``observed`` (T_M), ``null_mean``, ``null_std``,
    ``p_value``, ``null`` (perm,) and ``proximity`` (unit,) — each unit's
    n − mean |Δrank| to its neighbours (NaN when undefined). Attrs: ``n_classes``, adjacency.
    """
    if n_perm < 1:
        raise ValueError(f"n_perm must be >= 1; got {n_perm}.")
    pref = _preference_input(ds_or_pref, by, threshold, none)
    codes, classes = preference_codes(pref, none)
    n = len(classes)
    if (codes >= 0).sum() < 2:
        raise SheetError("fewer than 2 units have a preference; the topography index is undefined.")
    edges, info = neighbour_edges(pref, radius_mm=radius_mm, k=k, grid=grid, connectivity=connectivity)
    i, j = edges[:, 0], edges[:, 1]
    n_units = len(codes)

    def proximity(c: np.ndarray) -> np.ndarray:
        ok = (c[i] >= 0) & (c[j] >= 0)
        d = np.abs(c[i] - c[j])[ok].astype(float)
        ii, jj = i[ok], j[ok]
        total = np.bincount(ii, d, n_units) + np.bincount(jj, d, n_units)
        deg = np.bincount(ii, minlength=n_units) + np.bincount(jj, minlength=n_units)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where((deg > 0) & (c >= 0), n - total / deg, np.nan)

    perms = _perm_codes(codes, n_perm, seed)
    prox = [proximity(c) for c in tqdm(perms, desc="topography index", disable=not progress)]
    values = np.array([np.nanmean(p) if np.isfinite(p).any() else np.nan for p in prox])
    data = _null_summary(float(values[0]), values[1:])
    data["proximity"] = xr.DataArray(prox[0], dims=("unit",), coords=unit_coords(pref))
    return xr.Dataset(
        data,
        coords={"perm": np.arange(n_perm)},
        attrs={**info, "n_perm": n_perm, "seed": seed, "n_classes": n, "classes": classes,
               "definition": "T = mean over units of n - mean |rank(x) - rank(y)| over neighbours y; index = T_M - "
               "mean over permuted maps"},
    )
