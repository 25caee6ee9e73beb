"""Representation analyses of a Sheet: RSA, entropy, percentage of zeros, expert units, tuning curves.

All per-unit statistics are reductions over the ``stimulus`` dim; on dask-backed
Sheets they run chunk by chunk over units (``xarray.apply_ufunc`` with
``dask="parallelized"``) or as chunked matrix products, so a million-unit Sheet
is never loaded at once.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from scipy import stats
from scipy.spatial.distance import pdist, squareform

from ..errors import ParameterError, SheetError, UndefinedStatisticError
from ._common import (category_coords, check_sheet, finite_sheet, group_moments, pearson_normalise, responses,
                      undefined_norm, unit_coords)
from ._params import Interval, Options, fill_doc, validate_params
from ._grid import select_area

#: Metrics whose RDM is computed from a chunked Gram matrix (lazy on dask Sheets).
_GRAM_METRICS = ("correlation", "cosine", "euclidean", "sqeuclidean")


# --------------------------------------------------------------------------- helpers


def _finite_rows(x: np.ndarray, func: Any, **kwargs: Any) -> np.ndarray:
    """``func`` of each unit's row, NaN for a row holding NaN/±Inf (found without an extra pass)."""
    ok = np.isfinite(x).all(axis=-1)
    out = np.asarray(func(np.where(ok[..., None], x, 0.0), **kwargs), dtype=np.float64)
    return np.where(ok, out, np.nan)


def _per_unit(ds: xr.Dataset, func: Any, name: str, attrs: dict[str, Any], skipna: bool = False,
              **kwargs: Any) -> xr.DataArray:
    """Apply ``func(block (…, stimulus)) -> (…)`` over units, lazily for dask, and compute.

    ``func`` gives a finite value for finite input; a NaN out means non-finite responses, which
    are then located and reported (or their stimuli left out with ``skipna``) in one place.
    """
    def run(sheet: xr.Dataset) -> xr.DataArray:
        resp = responses(sheet)
        if resp.chunks is not None:
            resp = resp.chunk({"stimulus": -1})
        return xr.apply_ufunc(_finite_rows, resp, kwargs={"func": func, **kwargs}, input_core_dims=[["stimulus"]],
                              dask="parallelized", output_dtypes=[np.float64]).compute()

    out = run(ds)
    if np.isnan(out.values).any():
        out = run(finite_sheet(ds, name if name != "poz" else "percentage_of_zeros", skipna))
    out.name = name
    out.attrs = attrs
    return out


# --------------------------------------------------------------------------- RSA


def _gram_rdm(x: Any, metric: str) -> np.ndarray:
    """Stimulus × stimulus distances from X Xᵀ accumulated over unit chunks (x: stimulus × unit)."""
    x = x.astype(np.float64)
    max_abs = abs(x).max(axis=1)
    if metric == "correlation":
        x = x - x.mean(axis=1, keepdims=True)
    g = x @ x.T
    if hasattr(g, "compute"):
        import dask

        g, max_abs = dask.compute(g, max_abs)
    g = np.asarray(g)
    d = np.diag(g).copy()
    if metric in ("correlation", "cosine"):
        flat = undefined_norm(d, np.asarray(max_abs), x.shape[1])  # the one constant-vector rule (pearson_normalise)
        if flat.any():
            bad = int(np.flatnonzero(flat)[0])
            raise SheetError(
                f"stimulus {bad} has a constant response pattern across units, so its "
                f"{metric} distance is undefined; drop it or use metric='euclidean'."
            )
        out = 1.0 - g / np.sqrt(np.outer(d, d))
    else:
        out = np.maximum(d[:, None] + d[None, :] - 2 * g, 0.0)
        if metric == "euclidean":
            out = np.sqrt(out)
    np.fill_diagonal(out, 0.0)
    return out


def _one_rdm(ds: xr.Dataset, by: str | None, metric: str, skipna: bool = False) -> tuple[np.ndarray, np.ndarray, str]:
    if by is None:
        if not hasattr(responses(ds).data, "dask"):
            ds = finite_sheet(ds, "rdm", skipna)
        labels, name = np.asarray(ds["stimulus_id"].values), "stimulus"
        x = responses(ds).data
    else:
        gm = group_moments(ds, by=by, skipna=skipna, what="rdm")
        labels, name, x = gm.groups, by, gm.means()
    if x.shape[0] < 2:
        raise UndefinedStatisticError(f"an RDM needs at least 2 conditions; got {x.shape[0]}.")
    if metric in _GRAM_METRICS and hasattr(x, "dask"):
        mat = _gram_rdm(x, metric)
        if not np.isfinite(mat).all():  # non-finite responses: find them (one more pass) and report
            return _one_rdm(finite_sheet(ds, "rdm", skipna).load(), by, metric, skipna)
    else:
        arr = np.asarray(x, dtype=np.float64)
        if metric == "correlation" and not pearson_normalise(arr, axis=1)[1].all():
            raise SheetError(
                "a condition has a constant response pattern across units, so its correlation "
                "distance is undefined; drop it or use metric='euclidean'."
            )
        mat = squareform(pdist(arr, metric=metric))
    return mat, labels, name


@validate_params({"by": [None, str], "metric": [str]}, renamed={"ds": "obj"}, positional=("by", "area", "metric"))
@fill_doc
def rdm(
    obj: xr.Dataset, *, by: str | None = None, area: str | None = None, metric: str = "correlation",
    skipna: bool = False,
) -> xr.DataArray:
    """Representational dissimilarity matrix of the response patterns across units.

    Parameters
    ----------
    %(sheet)s
    by : str, optional
        Stimulus coord to average responses over first (condition RDM, conditions
        sorted); default one row per stimulus.
    area : str, optional
        One area. Default: every area, stacked along a leading ``area`` dim when
        the Sheet holds more than one.
    metric : str
        Any ``scipy.spatial.distance.pdist`` metric; default correlation distance
        1 − r. correlation / cosine / (sq)euclidean on dask Sheets accumulate the
        Gram matrix over unit chunks instead of loading responses.
    %(skipna)s

    Returns
    -------
    DataArray, dims ([area,] <name>_a, <name>_b) where <name> is "stimulus" or ``by``.
    """
    obj = check_sheet(obj, "rdm")
    if area is not None:
        obj = select_area(obj, area)
    areas = list(dict.fromkeys(np.asarray(obj["area"].values).astype(str).tolist())) if "area" in obj.coords else []
    if len(areas) <= 1:
        mat, labels, name = _one_rdm(obj, by, metric, skipna)
        return xr.DataArray(
            mat,
            dims=(f"{name}_a", f"{name}_b"),
            coords={f"{name}_a": labels, f"{name}_b": labels},
            name="rdm",
            attrs={"metric": metric, "area": areas[0] if areas else ""},
        )
    return xr.concat([rdm(obj, by=by, area=a, metric=metric, skipna=skipna) for a in areas],
                     dim=xr.DataArray(areas, dims="area", name="area"))


@validate_params({"method": [Options(("kendall", "spearman"))]})
def compare_rdms(a: xr.DataArray | np.ndarray, b: xr.DataArray | np.ndarray, method: str = "kendall") -> xr.DataArray:
    """Rank correlation of the upper triangles (diagonal excluded) of two RDMs.

    Parameters
    ----------
    a, b : square DataArray / ndarray (n, n), or DataArrays with a leading ``area`` dim
    method : {"kendall", "spearman"}
        Kendall τ-b (``scipy.stats.kendalltau``) or Spearman ρ (``scipy.stats.spearmanr``).

    Returns
    -------
    DataArray: the statistic (scalar, or over ``area``), attrs/var ``pvalue``.
    """
    if isinstance(a, xr.DataArray) and isinstance(b, xr.DataArray) and "area" in a.dims and "area" in b.dims:
        areas = [x for x in a["area"].values if x in set(b["area"].values)]
        if not areas:
            raise ParameterError("the two RDMs share no area.")
        parts = [compare_rdms(a.sel(area=x), b.sel(area=x), method) for x in areas]
        out = xr.concat(parts, dim=xr.DataArray(areas, dims="area", name="area"))
        out.attrs = {"method": method}
        return out
    ma, mb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    for m, nm in ((ma, "a"), (mb, "b")):
        if m.ndim != 2 or m.shape[0] != m.shape[1]:
            raise ParameterError(f"RDM {nm} must be square (n, n); got shape {m.shape}.")
    if ma.shape != mb.shape:
        raise ParameterError(f"RDMs have different shapes {ma.shape} and {mb.shape}; they must index the same conditions.")
    if ma.shape[0] < 3:
        raise UndefinedStatisticError("comparing RDMs needs at least 3 conditions (3 pairs).")
    iu = np.triu_indices(ma.shape[0], k=1)
    va, vb = ma[iu], mb[iu]
    if not (np.isfinite(va).all() and np.isfinite(vb).all()):
        raise UndefinedStatisticError("an RDM contains NaN/Inf; recompute it from finite responses (rdm(..., skipna=True)).")
    if np.ptp(va) == 0 or np.ptp(vb) == 0:
        raise UndefinedStatisticError("an RDM is constant off the diagonal; its rank correlation is undefined.")
    if method == "kendall":
        res = stats.kendalltau(va, vb, variant="b")
    else:
        res = stats.spearmanr(va, vb)
    return xr.DataArray(float(res.statistic), name=f"{method}_r", attrs={"method": method, "pvalue": float(res.pvalue), "n_pairs": int(len(va))})


# --------------------------------------------------------------------------- per-unit statistics


def _hist_entropy(x: np.ndarray, bins: int) -> np.ndarray:
    """Entropy (bits) of each row's histogram: ``bins`` equal-width bins over the row's own [min, max]."""
    lo = x.min(axis=-1, keepdims=True)
    span = x.max(axis=-1, keepdims=True) - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        idx = np.where(span > 0, np.floor((x - lo) / span * bins), 0)
    idx = np.clip(idx, 0, bins - 1).astype(np.int64)  # the max falls in the last bin
    rows = x.reshape(-1, x.shape[-1]).shape[0]
    flat = (np.arange(rows)[:, None] * bins + idx.reshape(rows, -1)).ravel()
    counts = np.bincount(flat, minlength=rows * bins).reshape(rows, bins)
    p = counts / x.shape[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        h = -np.sum(np.where(p > 0, p * np.log2(p), 0.0), axis=1)
    return h.reshape(x.shape[:-1])


@validate_params(renamed={"ds": "obj"}, positional=("area",))
@fill_doc
def entropy(obj: xr.Dataset, bins: int = 32, *, area: str | None = None, skipna: bool = False) -> xr.DataArray:
    """Shannon entropy (bits) of each unit's response distribution across stimuli.

    Binning: for every unit, ``bins`` equal-width bins spanning that unit's own
    [min, max] response (so units of different scale are comparable); a constant
    unit has entropy 0 and the maximum is log2(bins). Truong & Hasson compute it
    on pre-ReLU activations — record the Sheet before the nonlinearity. NaN/±Inf
    responses raise a SheetError (``skipna=True``: their stimuli are left out).

    Parameters
    ----------
    %(sheet)s
    bins : int >= 2
    %(area)s
    %(skipna)s

    Returns
    -------
    DataArray over ``unit`` (unit coords kept), bits.
    """
    if isinstance(bins, bool) or not np.isfinite(bins) or int(bins) != bins or bins < 2:
        raise ParameterError(f"bins must be an integer >= 2; got {bins!r}.")
    obj = select_area(check_sheet(obj, "entropy"), area) if area is not None else check_sheet(obj, "entropy")
    if obj.sizes.get("stimulus", 0) < 2:
        raise UndefinedStatisticError("entropy needs at least 2 stimuli.")
    return _per_unit(obj, _hist_entropy, "entropy", {"units": "bits", "bins": int(bins), "binning": "per-unit equal width, [min, max]"},
                     skipna, bins=int(bins))


def _fraction_le(x: np.ndarray, atol: float) -> np.ndarray:
    return 100.0 * np.mean(x <= atol, axis=-1)


@validate_params({"atol": [Interval()]}, renamed={"ds": "obj"}, positional=("area",))
@fill_doc
def percentage_of_zeros(obj: xr.Dataset, atol: float = 0.0, *, area: str | None = None,
                        skipna: bool = False) -> xr.DataArray:
    """Percentage of zeros (PoZ, Hu et al. 2016): % of stimuli with response ≤ ``atol``.

    On post-ReLU responses this is the share of exact zeros; counting "≤ atol"
    rather than "== 0" makes it the PoZ *after* a ReLU when the Sheet holds
    pre-ReLU values too. Returns a DataArray over ``unit`` in percent (0–100).
    NaN/±Inf responses raise a SheetError (``skipna=True``: their stimuli are left out).

    Parameters
    ----------
    %(sheet)s
    atol : float
    %(area)s
    %(skipna)s
    """
    if not np.isfinite(atol):
        raise ParameterError(f"atol must be a finite number; got {atol!r}.")
    obj = check_sheet(obj, "percentage_of_zeros")
    obj = select_area(obj, area) if area is not None else obj
    if obj.sizes.get("stimulus", 0) < 1:
        raise UndefinedStatisticError("percentage_of_zeros needs at least 1 stimulus.")
    return _per_unit(obj, _fraction_le, "poz", {"units": "%", "atol": float(atol), "long_name": "percentage of zero responses"},
                     skipna, atol=float(atol))


@validate_params(renamed={"ds": "obj"}, positional=("by", "threshold", "area"))
@fill_doc
def expert_units(obj: xr.Dataset, *, by: str = "label", threshold: float = 2.0, area: str | None = None,
                 skipna: bool = False) -> xr.Dataset:
    """Category "expert" units: units that respond to one class more than to all others.

    Definition (Truong & Hasson's text does not spell it out; this is the usual
    one-vs-rest selectivity criterion, with the d′ of the Reset preference map):
    a unit's preferred class c* is the one with the highest mean response; the
    unit is an expert for c* when c*'s mean exceeds every other class's mean and
    d′ = (μ_c* − μ_rest) / sqrt((σ²_c* + σ²_rest)/2) ≥ ``threshold``, "rest"
    being all stimuli of the other classes (sample variances, ddof = 1).

    Parameters
    ----------
    %(sheet)s
    %(by)s
    threshold : float
        d′ an expert reaches.
    %(area)s
    %(skipna)s

    Returns
    -------
    xarray.Dataset
        per unit: ``preferred`` (class value), ``dprime``, ``is_expert``; per class
        (dim ``category``): ``n_experts`` and ``fraction_experts`` (of all units); coord
        ``class`` (indexed, the old dim name, deprecated) holds the same labels.
    """
    obj = select_area(check_sheet(obj, "expert_units"), area)
    gm = group_moments(obj, by=by, skipna=skipna, what="expert_units")
    n_cls = len(gm.groups)
    if n_cls < 2:
        raise SheetError(f"coord {by!r} has a single value {gm.groups.tolist()}; expert units need >= 2 classes.")
    if np.any(gm.count < 2):
        raise SheetError(
            f"classes {gm.groups[gm.count < 2].tolist()} of {by!r} have fewer than 2 stimuli; "
            f"d′ needs a variance per class — add stimuli or drop those classes."
        )
    eye = np.eye(n_cls)
    mean, var, _ = gm.mean_var(eye)
    mean_rest, var_rest, _ = gm.mean_var(1.0 - eye)
    best = np.argmax(mean, axis=0)
    cols = np.arange(mean.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = (var[best, cols] + var_rest[best, cols]) / 2
        d = np.where(pooled > 0, (mean[best, cols] - mean_rest[best, cols]) / np.sqrt(pooled), np.nan)
    is_expert = (mean[best, cols] > np.sort(mean, axis=0)[-2]) & (d >= threshold)
    n_exp = np.bincount(best[is_expert], minlength=n_cls)
    return xr.Dataset(
        {
            "preferred": ("unit", gm.groups[best]),
            "dprime": ("unit", d, {"long_name": "d′ of the preferred class vs the rest"}),
            "is_expert": ("unit", is_expert),
            "n_experts": ("category", n_exp),
            "fraction_experts": ("category", n_exp / mean.shape[1]),
        },
        coords={**unit_coords(obj), **category_coords(gm.groups)},
        attrs={"by": by, "threshold": float(threshold)},
    ).set_xindex("class")


@validate_params(renamed={"ds": "obj"}, positional=("by", "area"))
@fill_doc
def tuning_curves(obj: xr.Dataset, *, by: str = "orientation_deg", area: str | None = None,
                  skipna: bool = False) -> xr.DataArray:
    """Mean response of every unit to each value of a stimulus coord.

    NaN/±Inf responses raise a SheetError (``skipna=True``: their stimuli are left out).

    Parameters
    ----------
    %(sheet)s
    %(by)s
    %(area)s
    %(skipna)s

    Returns
    -------
    DataArray, dims (``by``, unit): one row per sorted unique value of ``by``
    (coord ``n_stimuli`` counts the stimuli behind each), unit coords kept.
    """
    obj = select_area(check_sheet(obj, "tuning_curves"), area)
    gm = group_moments(obj, by=by, skipna=skipna, what="tuning_curves")
    return xr.DataArray(
        gm.means(),
        dims=(by, "unit"),
        coords={by: gm.groups, "n_stimuli": (by, gm.count.astype(np.int64)), **unit_coords(obj)},
        name="tuning_curve",
        attrs={"long_name": f"mean response per {by}"},
    )
