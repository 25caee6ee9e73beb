"""Reset clustering and topography indices (Hannagan et al., supplementary material S1).

**Clustering index.** For each class c of a preference map M, take the units
preferring c and their connected components on the sheet; the clustering of c
is the mean number of units per component. C_M is the mean of that over the
classes present ("the average size, over all target classes, of the connected
components on the grid for this class"). The control C_s(M) is the same
quantity on maps whose preferences are randomly permuted across units,
**averaged over the n_perm permutations**; the index is C_M − C_s(M).

**Topography index** (ordered classes, e.g. numbers). With p(x) the preferred
class of unit x — its **value** when the classes are numbers (numerosities:
|p(x) − p(y)| is the paper's number distance), else its rank among the n ordered
classes — and v(x) its neighbours that have a preference::

    T_M = ⟨ n − ⟨|p(x) − p(y)|⟩_{y ∈ v(x)} ⟩_{x ∈ M}

(proximity of a unit's preference to its neighbours'). The index is
T_M − ⟨T_s(M)⟩ over permuted maps.

Comparison with the reference notebooks (THANNAGA/Reset-Networks @dc901ff)
-------------------------------------------------------------------------
* **Connectivity: 8 by default.** The notebooks call
  ``cv2.connectedComponentsWithStats(thresh, connectivity, cv2.CV_32S)``; that function's
  second positional argument is the ``labels`` output, so the ``connectivity = 4`` they
  pass never reached OpenCV and its default 8-connectivity produced the published numbers.
  ``connectivity=4`` stays available.
* **Control: the plain mean over permutations.** The notebooks sum 10 shuffled maps and
  divide by 20 (``power = 20``), halving C_s(M) and inflating the index; the whole null
  distribution is returned here. The paper reports |C_M − C_s(M)|; the signed difference
  is returned (negative: less clustered than chance).
* **Classes no unit prefers.** The notebooks give such a class size 1 (``np.mean`` of no
  components is NaN, replaced by "minimal cluster size" 1) and their figures take the
  **median** over classes; the paper's text averages over the classes. Default here:
  ``absent="skip"``, ``reduce="mean"``; ``absent="one"``, ``reduce="median"`` reproduce the
  notebooks' summary.
* **Which maps are clustered.** The notebooks threshold each class's own d′ map (a unit
  can count for several classes) computed on class-*mean* maps; here the clustered map is
  the preference map (each unit its best class above threshold) of per-stimulus d′ — see
  :func:`~cortexsim.analysis.preference_map` (``stat="class_means"`` gives the notebooks' d′).
* **Topography index.** The notebooks' ``topo2`` takes label (= numerosity) differences,
  counts a neighbour without preference as distance 10 (= n), skips units on the grid's
  border as centres, always divides by 8, and scales by 0.1 (= 1/n, so T ∈ [0, 1]).
  Defaults here: neighbours without preference are left out (``none_neighbours="skip"``),
  border units are centres with their existing neighbours (``border="include"``), and T is in
  number units (``normalise=False``); ``none_neighbours="penalise"``, ``border="exclude"``,
  ``normalise=True`` reproduce ``topo2``. Because |Δ| is taken on values, a map preferring
  only even numerosities is not compressed to ranks (which would halve the index).

Adjacency: on a regular grid the clustering index uses 8-neighbour components and the
topography index the 8 immediate neighbours (as the paper states); irregular sheets use a
radius or k-NN neighbour graph (:mod:`.graphs`).
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

from ..errors import ParameterTypeError, SheetError, UndefinedStatisticError
from ..seeding import numpy_rng
from ._common import category_coords, grid_rowcol, unit_coords
from ._params import Interval, Options, fill_doc, validate_params
from .graphs import neighbour_edges
from .preference import NONE, preference_map

_NUMBER_VARS = ("preferred_numerosity", "preference")


def _sort_classes(labels: list[str]) -> list[str]:
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


@validate_params(renamed={"pref": "obj"})
def preference_codes(obj: xr.DataArray, none: str = NONE) -> tuple[np.ndarray, list[str]]:
    """Integer class codes (n_units,) of a preference map (-1: no preference) and the ordered classes.

    String maps use ``attrs["classes"]`` for the order when present (numeric
    labels sort numerically otherwise); numeric maps (e.g. preferred numerosity)
    treat NaN as no preference and order classes by value.
    """
    if obj.dims != ("unit",):
        raise SheetError(f"a preference map must be a DataArray over ('unit',); got dims {obj.dims}.")
    values = np.asarray(obj.values)
    if values.dtype.kind in "iuf":
        ok = np.isfinite(values.astype(float))
        uniq = np.unique(values[ok])
        codes = np.full(values.shape, -1, dtype=np.int64)
        codes[ok] = np.searchsorted(uniq, values[ok])
        return codes, [str(v) for v in uniq.tolist()]
    labels = values.astype(str)
    none = str(obj.attrs.get("none", none))
    classes = obj.attrs.get("classes")
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
    raise ParameterTypeError(f"expected a Sheet or a preference DataArray; got {type(obj).__name__}.")


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
    rng = numpy_rng(seed)  # the one seed scheme (= default_rng(seed))
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


@validate_params({"n_perm": [Interval(1, None, integer=True)], "grid": [None, bool], "absent": [Options(("skip", "one"))],
                  "reduce": [Options(("mean", "median"))]}, renamed={"pref": "obj"}, positional=("n_perm", "seed"))
@fill_doc
def clustering_index(
    obj: xr.DataArray | xr.Dataset,
    *,
    n_perm: int = 20,
    seed: int = 0,
    by: str = "domain",
    threshold: float = 2.0,
    connectivity: int = 8,
    grid: bool | None = None,
    radius_mm: float | None = None,
    k: int | None = None,
    none: str = NONE,
    absent: str = "skip",
    reduce: str = "mean",
    progress: bool = False,
) -> xr.Dataset:
    """Reset clustering index of a preference map, against permuted maps.

    Parameters
    ----------
    obj : DataArray (unit,) of preference labels (:func:`preference_map`), or a
        Sheet (then ``preference_map(obj, by=by, threshold=threshold)`` is computed first)
    %(n_perm)s
        Reset: 20; at least 1.
    %(seed)s
    by, threshold : used only for a Sheet input
    connectivity : 4 or 8
        Grid neighbourhood (default 8: what the reference's OpenCV call ran; module docstring).
    grid, radius_mm, k : adjacency (see :func:`~cortexsim.analysis.graphs.neighbour_edges`);
        default: the grid when units tile one, else k-NN with k = 8.
    %(none)s
        They are left out of every category.
    absent : "skip" | "one"
        A class no unit prefers is left out of the summary ("skip", the paper's text) or
        counts as clustering 1 ("one", the reference notebooks).
    reduce : "mean" | "median"
        Summary over classes: the paper's mean, or the median of the notebooks' figures.
    %(progress)s

    Returns
    -------
    Dataset with scalars ``index`` (observed − null_mean), ``observed`` (C_M),
    ``null_mean`` (C_s(M)), ``null_std``, ``p_value`` (one-sided, (1 + #null ≥ observed)/(1 + n_perm));
    ``null`` (perm,); per category ``observed_per_category``, ``n_components``, ``n_units``;
    ``null_per_category`` (perm, category). Coord ``class`` (indexed) repeats ``category``
    under the previous release's dim name, and ``observed_per_class`` / ``null_per_class`` repeat the
    per-category variables under their old names (both deprecated, kept for one release).
    Attrs: adjacency, n_perm, seed.

    Notes
    -----
    Against the Reset notebooks (module docstring): their control sums 10 shuffled maps and
    divides by 20, halving C_s(M) — here ``null_mean`` is the plain mean (2 × their value on the
    same shuffles); they cluster each class's own thresholded d′ map computed on class-*mean*
    maps (:func:`~cortexsim.analysis.class_mean_dprime`, ``preference_map(..., stat="class_means")``),
    which gives nearly every pure-noise unit a preference; ``absent="one", reduce="median"`` is
    their summary over classes.
    """
    pref = _preference_input(obj, by, threshold, none)
    codes, classes = preference_codes(pref, none)
    n_units = np.bincount(codes[codes >= 0], minlength=len(classes))
    present = n_units > 0
    if not present.any():
        raise UndefinedStatisticError(
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
    n_comp = np.stack([count(c) for c in tqdm(perms, desc="clustering index", disable=None if progress else True)])
    with np.errstate(invalid="ignore", divide="ignore"):
        sizes = n_units[None, :] / n_comp  # (1 + n_perm, class); NaN for absent classes
    if absent == "one":
        sizes[:, ~present] = 1.0
    summary = np.mean if reduce == "mean" else np.median
    per_map = summary(sizes if absent == "one" else sizes[:, present], axis=1)
    data = _null_summary(float(per_map[0]), per_map[1:])
    data.update(
        observed_per_category=(("category",), sizes[0]),
        n_components=(("category",), n_comp[0]),
        n_units=(("category",), n_units),
        null_per_category=(("perm", "category"), sizes[1:]),
        # the previous release's names, for one release (as morans_i keeps p_sim / I_null)
        observed_per_class=(("category",), sizes[0], {"deprecated": "use observed_per_category"}),
        null_per_class=(("perm", "category"), sizes[1:], {"deprecated": "use null_per_category"}),
    )
    return xr.Dataset(
        data,
        coords={**category_coords(classes), "perm": np.arange(n_perm)},
        attrs={
            **info,
            "n_perm": n_perm,
            "seed": seed,
            "absent": absent,
            "reduce": reduce,
            "definition": f"{reduce} over classes of the mean same-preference component size, minus the mean over "
            "permuted maps (control averaged over n_perm; no halving)",
        },
    ).set_xindex("class")


def _class_values(classes: list[str]) -> tuple[np.ndarray, str]:
    """Numeric value of each class (numbers: the labels' values) or its rank; and which."""
    try:
        return np.array([float(c) for c in classes], dtype=float), "value"
    except ValueError:
        return np.arange(len(classes), dtype=float), "rank"


@validate_params({"n_perm": [Interval(1, None, integer=True)], "grid": [None, bool],
                  "none_neighbours": [Options(("skip", "penalise"))], "border": [Options(("include", "exclude"))],
                  "normalise": [bool]}, renamed={"ds_or_pref": "obj"}, positional=("n_perm", "seed"))
@fill_doc
def topography_index(
    obj: xr.Dataset | xr.DataArray,
    *,
    n_perm: int = 20,
    seed: int = 0,
    by: str = "numerosity",
    threshold: float = 2.0,
    connectivity: int = 8,
    grid: bool | None = None,
    radius_mm: float | None = None,
    k: int | None = None,
    none: str = NONE,
    none_neighbours: str = "skip",
    border: str = "include",
    normalise: bool = False,
    progress: bool = False,
) -> xr.Dataset:
    """Reset topography index T_M − ⟨T_s(M)⟩ for ordered preferences (numbers).

    Parameters
    ----------
    obj : Sheet (preferences computed with ``preference_map(obj, by=by, threshold=threshold)``),
        a preference DataArray (ordered by ``attrs["classes"]`` or numerically), a
        numeric per-unit DataArray (NaN = none), or a :func:`number_map` Dataset
    %(n_perm)s
    %(seed)s
    connectivity : grid neighbourhood, 8 (default, the paper's "8 immediate neighbors") or 4
    grid, radius_mm, k, none, progress : as :func:`clustering_index`
    none_neighbours : "skip" | "penalise"
        Neighbours without a preference are left out (default) or count as distance n
        (the reference notebooks' ``topo2``).
    border : "include" | "exclude"
        Units on the grid's border are centres with the neighbours they have (default) or
        not centres at all (``topo2``); grid adjacency only.
    normalise : bool
        Divide T by n (``topo2``'s factor 0.1 with its n = 10 classes), so T ∈ [0, 1].

    Class distances |p(x) − p(y)| are on the classes' numeric values when every class label
    is a number (numerosities), else on their ranks. n is the number of classes: the map's
    ``attrs["classes"]``, a :func:`number_map` Dataset's tested numerosities, or (a bare
    numeric map) the values present. n shifts T_M and every null map alike, so the index
    does not depend on it.

    Returns
    -------
    Dataset with ``index``, ``observed`` (T_M), ``null_mean``, ``null_std``,
    ``p_value``, ``null`` (perm,) and ``proximity`` (unit,) — each unit's
    n − mean |Δ| to its neighbours (NaN when undefined). Attrs: ``n_classes``, ``distance``
    ("value" or "rank"), adjacency and the options.
    """
    pref = _preference_input(obj, by, threshold, none)
    codes, classes = preference_codes(pref, none)
    all_classes = classes
    if isinstance(obj, xr.Dataset) and "responses" not in obj.data_vars and by in obj.coords:
        all_classes = [str(v) for v in np.unique(np.asarray(obj[by].values, dtype=float)).tolist()]
    elif pref.dtype.kind in "iuf" and pref.attrs.get("classes") is not None:
        all_classes = [str(c) for c in pref.attrs["classes"]]
    values, distance = _class_values(classes)
    n = max(len(all_classes), len(classes))
    if (codes >= 0).sum() < 2:
        raise UndefinedStatisticError("fewer than 2 units have a preference; the topography index is undefined.")
    edges, info = neighbour_edges(pref, radius_mm=radius_mm, k=k, grid=grid, connectivity=connectivity)
    i, j = edges[:, 0], edges[:, 1]
    n_units = len(codes)
    centre_ok = np.ones(n_units, dtype=bool)
    if border == "exclude":
        rc = grid_rowcol(pref)
        if rc is None or not info["adjacency"].startswith("grid"):
            raise SheetError("border='exclude' needs units on a regular grid (row/col) with grid adjacency.")
        row, col = rc
        centre_ok = (row > row.min()) & (row < row.max()) & (col > col.min()) & (col < col.max())
    penalise = none_neighbours == "penalise"

    def proximity(c: np.ndarray) -> np.ndarray:
        has = c >= 0
        v = np.where(has, values[np.maximum(c, 0)], np.nan)
        # each undirected edge contributes to both ends: (centre, neighbour) = (i, j) and (j, i)
        a, b = np.concatenate([i, j]), np.concatenate([j, i])
        use = has[a] & (has[b] | penalise)
        d = np.where(has[b], np.abs(v[a] - v[b]), float(n))[use]
        total = np.bincount(a[use], d, n_units)
        deg = np.bincount(a[use], minlength=n_units)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where((deg > 0) & has & centre_ok, n - total / deg, np.nan)
        return out / n if normalise else out

    perms = _perm_codes(codes, n_perm, seed)
    prox = [proximity(c) for c in tqdm(perms, desc="topography index", disable=None if progress else True)]
    values_t = np.array([np.nanmean(p) if np.isfinite(p).any() else np.nan for p in prox])
    data = _null_summary(float(values_t[0]), values_t[1:])
    data["proximity"] = xr.DataArray(prox[0], dims=("unit",), coords=unit_coords(pref))
    return xr.Dataset(
        data,
        coords={"perm": np.arange(n_perm)},
        attrs={**info, "n_perm": n_perm, "seed": seed, "n_classes": n, "classes": classes, "distance": distance,
               "none_neighbours": none_neighbours, "border": border, "normalise": int(normalise),
               "definition": "T = mean over units of n - mean |p(x) - p(y)| over neighbours y (p: class value for "
               "numbers, else rank); index = T_M - mean over permuted maps"},
    )
