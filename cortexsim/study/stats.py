"""The statistics of a category-map study, computed from one saved Sheet alone.

For the topographic area of a Sheet recorded on labelled stimuli (stimulus coord ``by``):

* d′ maps, one per category (that category vs the rest, :func:`cortexsim.analysis.selectivity`);
* the preference map (:func:`~cortexsim.analysis.preference_map`): each unit's best
  category where its d′ exceeds ``threshold`` (Reset and cortexsim: 2), else ``none``;
* Hannagan's **clustering index** (:func:`~cortexsim.analysis.clustering_index`): mean size
  of the connected same-preference components (8-neighbour grid), minus the mean over maps
  with the preferences shuffled over units, with its permutation null and p-value;
* **Moran's I** of each category's d′ map (k = 8 nearest units) with a permutation p-value;
* **smoothness**: response correlation of unit pairs against cortical distance, and the
  same with positions shuffled (:func:`~cortexsim.analysis.smoothness`);
* for ordered categories (numbers, ``ordered=True``) also Hannagan's **topography index** T_M − ⟨T_s(M)⟩.

Everything the report draws or tabulates is in :class:`MapResult`, so the report needs the
Sheets and nothing else.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

THRESHOLD = 2.0
_NULL_KEYS = ("index", "observed", "null_mean", "null_std", "p_value")


@dataclass
class MapResult:
    """What the report shows for one model (every field derived from its Sheet)."""

    label: str
    area: str
    attrs: dict[str, Any]
    n_units: int
    n_stimuli: int
    categories: list[str]
    n_selective: int
    clustering: dict[str, Any]
    moran: dict[str, Any]
    smoothness: dict[str, Any]
    preference: Any  # DataArray (unit,) of labels
    dprime: Any  # DataArray (category, unit)
    topography: dict[str, Any] | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """The scalar numbers (plain floats / ints) of the statistics table and ``summary.json``."""
        out: dict[str, Any] = {"units": self.n_units, "stimuli": self.n_stimuli, "selective_units": self.n_selective}
        for key in ("train_accuracy", "heldout_accuracy"):
            if key in self.attrs:
                out[key] = float(self.attrs[key])
        for name, stat in (("clustering", self.clustering), ("topography", self.topography)):
            if stat is not None:
                out.update({f"{name}_{k}": stat[k] for k in _NULL_KEYS})
        out["morans_i_mean"] = self.moran["mean_I"]
        out["morans_p_max"] = self.moran["max_p"]
        out["neighbour_correlation"] = self.smoothness["near"]
        out["neighbour_correlation_shuffled"] = self.smoothness["near_shuffled"]
        return out


def _null(ds: Any) -> dict[str, Any]:
    out: dict[str, Any] = {k: float(ds[k]) for k in _NULL_KEYS}
    out["null"] = np.asarray(ds["null"].values, float)
    return out


def _area(sheet: Any, area: str | None) -> tuple[Any, str]:
    if "area" not in sheet.coords:
        return sheet, area or ""
    areas = sheet.cortex.areas
    name = area or areas[-1]
    return sheet.cortex.area(name), name


def map_result(sheet: Any, label: str, *, by: str, area: str | None = None, threshold: float = THRESHOLD,
               n_perm: int = 200, seed: int = 0, ordered: bool = False) -> MapResult:
    """All statistics of ``sheet``'s ``area`` (default: its last area); see the module docstring.

    ``n_perm`` shuffled maps for every null, drawn from ``seed``. ``ordered``: the categories are
    numbers whose distance matters (Reset's number codes), so the topography index is computed too.
    """
    from .. import analysis

    ds, area = _area(sheet, area)
    with warnings.catch_warnings():  # units with constant responses have undefined d′: NaN, never selective
        warnings.simplefilter("ignore", RuntimeWarning)
        d = analysis.selectivity(ds, by=by, stat="dprime", undefined="nan").load()
        pref = analysis.preference_map(ds, by=by, threshold=threshold)
    cat_dim = d.dims[0]
    categories = [str(c) for c in d[cat_dim].values]
    labels = np.asarray(pref.values).astype(str)
    counts = {c: int((labels == c).sum()) for c in categories}
    selective = int(sum(counts.values()))
    if selective:
        clustering = _null(analysis.clustering_index(pref, n_perm=n_perm, seed=seed))
    else:  # nothing to cluster: the index is 0 by definition of an empty map (reported as such)
        clustering = {"index": 0.0, "observed": 0.0, "null_mean": 0.0, "null_std": 0.0, "p_value": 1.0,
                      "null": np.zeros(n_perm)}
    mi, mp = [], []
    for k in range(d.sizes[cat_dim]):
        dk = d.isel({cat_dim: k})
        if np.isfinite(dk.values).sum() > 8 and np.nanstd(dk.values) > 0:
            m = analysis.morans_i(dk, k=8, n_perm=n_perm, seed=seed + k)
            mi.append(float(m["I"]))
            mp.append(float(m["p_value"]))
    moran = {"per_category": dict(zip(categories, mi)), "mean_I": float(np.mean(mi)) if mi else float("nan"),
             "max_p": float(np.max(mp)) if mp else float("nan")}
    # bins one unit spacing wide, centred on 1, 2, ... spacings: grid neighbours fall in the first
    from scipy.spatial import cKDTree

    pos = ds.cortex.positions[:, :2]
    spacing = float(np.median(cKDTree(pos).query(pos, k=2)[0][:, 1]))
    n_bins = max(2, min(8, int(0.5 * np.ptp(pos, axis=0).min() / spacing)))
    sm = analysis.smoothness(ds, bins=(np.arange(n_bins + 1) + 0.5) * spacing, seed=seed)
    sim, shuf = np.asarray(sm["similarity"].values, float), np.asarray(sm["similarity_shuffled"].values, float)
    first = int(np.flatnonzero(np.isfinite(sim))[0])
    smooth = {"distance_mm": np.asarray(sm["distance_bin"].values, float), "similarity": sim, "shuffled": shuf,
              "near": float(sim[first]), "near_shuffled": float(shuf[first]), "near_mm": float(sm["distance_bin"][first])}
    topo = None
    if ordered and selective > 1:
        with warnings.catch_warnings():  # the same dead units as above
            warnings.simplefilter("ignore", RuntimeWarning)
            topo = _null(analysis.topography_index(ds, n_perm=n_perm, seed=seed, by=by, threshold=threshold))
    attrs = {k: v for k, v in sheet.attrs.items() if isinstance(v, (int, float, str, np.integer, np.floating))}
    return MapResult(label=label, area=area, attrs=attrs, n_units=int(ds.sizes["unit"]),
                     n_stimuli=int(ds.sizes["stimulus"]), categories=categories, n_selective=selective,
                     clustering=clustering, moran=moran, smoothness=smooth, preference=pref, dprime=d,
                     topography=topo, counts=counts)
