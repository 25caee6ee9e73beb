"""Preference maps: category, number and orientation maps of a Sheet.

* :func:`preference_map` — each unit's preferred category: the category of its
  highest d′ (category vs rest) when that d′ exceeds ``threshold`` (default 2,
  as in Hannagan et al.'s Reset networks), else ``"none"``;
  :func:`class_mean_dprime` — the Reset notebooks' d′ on per-class mean maps.
* :func:`number_map` — preferred numerosity, tuning width (full width at half
  maximum of the numerosity tuning curve) and selectivity.
* :func:`orientation_map` — preferred orientation (vector average on the
  doubled-angle circle), preferred spatial frequency, circular variance and
  orientation selectivity index from a gratings Sheet.

Every result is labelled over ``unit`` with the Sheet's unit coords.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..errors import SheetError, UndefinedStatisticError
from ._common import GroupMoments, check_sheet, group_codes, moments_from_codes, per_unit, require_coord, unit_coords
from ._params import Interval, Options, fill_doc, validate_params
from .selectivity import moments_for, selectivity

NONE = "none"


@validate_params(renamed={"sel": "obj"})
def preference_from_selectivity(obj: xr.DataArray, threshold: float = 2.0, none: str = NONE) -> xr.DataArray:
    """Preference labels from a (category, unit) selectivity DataArray.

    A unit prefers the category of its largest value when that value is
    strictly greater than ``threshold``; otherwise it gets ``none``. NaN values
    (undefined d′) never win.
    """
    if "category" not in obj.dims or "unit" not in obj.dims:
        raise SheetError(
            f"a selectivity DataArray needs dims ('category', 'unit'); got {obj.dims}. "
            f"Compute it with analysis.selectivity(ds, by=...)."
        )
    obj = obj.transpose("category", "unit")
    v = np.asarray(obj.values, dtype=float)
    filled = np.where(np.isnan(v), -np.inf, v)
    best = filled.argmax(axis=0)
    top = filled[best, np.arange(v.shape[1])]
    classes = [str(c) for c in obj["category"].values.tolist()]
    if none in classes:
        raise SheetError(f"a category is called {none!r}, the label for units without preference; pass none=<other label>.")
    labels = np.asarray(classes + [none])
    pick = np.where(top > threshold, best, len(classes))
    return per_unit(
        labels[pick],
        obj,
        "preference",
        long_name=f"preferred {obj.attrs.get('by', 'category')} ({obj.attrs.get('stat', 'dprime')} > {threshold})",
        by=obj.attrs.get("by", "category"),
        threshold=float(threshold),
        classes=classes,
        none=none,
        stat=obj.attrs.get("stat", "dprime"),
    )


@validate_params(renamed={"ds": "obj"}, positional=("by",))
def class_mean_dprime(obj: xr.Dataset, *, by: str = "domain", moments: GroupMoments | None = None) -> xr.DataArray:
    """The Reset notebooks' d′ (THANNAGA/Reset-Networks, ``compute_pipeline2``), per class and unit.

    For class c with mean response map m_c (mean over its stimuli) and the mean maps m_k of the
    other classes: d′_c = (m_c − mean_k m_k) / ((s_c + s_rest) / 2), where s_rest is the s.d.
    (ddof 0) of the other classes' *mean* maps and s_c = 0 — class c enters as a single map.

    This is not the per-stimulus d′ of :func:`~cortexsim.analysis.selectivity` (the paper's
    text: responses to the stimuli of A against those of B). With one sample on the target side
    and the spread of a few class means in the denominator it grows large for units that only
    carry noise: on a planted map pure-noise units reach d′ ≈ 10 where their per-stimulus d′ stays
    below 1, so nearly every unit gets a preference. Offered to reproduce the published maps.

    Returns
    -------
    DataArray (category, unit) like :func:`selectivity`, ``attrs["stat"] = "class_means"``;
    NaN where the other classes' means do not vary.
    """
    m = moments_for(obj, by, moments)
    means = m.means()  # (G, U)
    g = len(m.groups)
    if g < 3:
        raise UndefinedStatisticError(f"class-mean d′ needs at least 3 classes in {by!r} (an s.d. over the others); got {g}.")
    rest = (means.sum(axis=0, keepdims=True) - means) / (g - 1)  # mean of the other classes' maps
    sq = (np.square(means).sum(axis=0, keepdims=True) - np.square(means)) / (g - 1)
    sd_rest = np.sqrt(np.clip(sq - np.square(rest), 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.where(sd_rest > 0, 2.0 * (means - rest) / sd_rest, np.nan)
    coords: dict[str, Any] = {"category": ("category", m.groups)}
    coords.update(unit_coords(obj))
    return xr.DataArray(d, dims=("category", "unit"), coords=coords, name="dprime",
                        attrs={"long_name": f"d-prime of each {by}'s mean map vs the other classes' mean maps",
                               "units": "1", "by": by, "stat": "class_means"})


@validate_params({"stat": [Options(("dprime", "t", "class_means"))]}, renamed={"ds_or_sel": "obj"},
                 positional=("by", "threshold"))
@fill_doc
def preference_map(
    obj: xr.Dataset | xr.DataArray,
    *,
    by: str = "domain",
    threshold: float = 2.0,
    stat: str = "dprime",
    none: str = NONE,
    ddof: int = 1,
    undefined: str = "nan",
    moments: GroupMoments | None = None,
) -> xr.DataArray:
    """Each unit's preferred category (``by``), or ``none`` below threshold.

    Parameters
    ----------
    obj : Sheet, or a (category, unit) DataArray from :func:`selectivity`
    %(by)s
        Ignored for a selectivity input.
    threshold : float
        A unit prefers category c when d′(c vs rest) is its largest and > threshold
        (Reset: 2).
    stat : {"dprime", "t", "class_means"}
        Statistic thresholded (Sheet input only). ``"dprime"`` (default) is the per-stimulus d′
        of the paper's text; ``"class_means"`` the Reset notebooks' d′ on class-mean maps
        (:func:`class_mean_dprime`), which gives noise units large d′ — use it only to reproduce
        published maps.
    %(none)s
    ddof, undefined, moments
        Passed to :func:`selectivity`.

    Returns
    -------
    DataArray (unit,) of str labels, name ``"preference"``; attrs ``by``,
    ``threshold``, ``classes`` (ordered category labels as str) and ``none``.

    Notes
    -----
    Differences from the Reset notebooks (THANNAGA/Reset-Networks), which compute their maps on
    class-mean d′ (``stat="class_means"``), cluster each class's own thresholded d′ map, and
    halve their shuffled control (10 shuffles divided by 20) — see
    :mod:`cortexsim.analysis.clustering`.
    """
    if isinstance(obj, xr.DataArray):
        return preference_from_selectivity(obj, threshold, none)
    if stat == "class_means":
        return preference_from_selectivity(class_mean_dprime(obj, by=by, moments=moments), threshold, none)
    sel = selectivity(obj, by=by, stat=stat, ddof=ddof, undefined=undefined, moments=moments)
    return preference_from_selectivity(sel, threshold, none)


def half_max_width(x: np.ndarray, curves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Full width at half maximum of tuning curves, vectorised over units.

    Parameters
    ----------
    x : ndarray (K,), increasing stimulus values (e.g. numerosities)
    curves : ndarray (K, U), responses per value

    Returns
    -------
    width : ndarray (U,)
        Distance (in units of ``x``) between the half-maximum crossings either
        side of the peak, found by linear interpolation; the baseline is the
        curve's minimum. Where the curve stays above half maximum up to an end
        of ``x``, that end is used (the width is then a lower bound).
    open_ended : ndarray of bool (U,)
        True where a side never fell below half maximum.
    """
    k, u = curves.shape
    lo, hi = np.nanmin(curves, axis=0), np.nanmax(curves, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = (curves - lo) / (hi - lo)
    c = np.where(np.isnan(c), 0.0, c)
    peak = c.argmax(axis=0)
    idx = np.arange(k)[:, None]
    cols = np.arange(u)

    def crossing(below: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
        # first index past the peak (in direction `step`) where the curve is below 0.5
        has = below.any(axis=0)
        first = below.argmax(axis=0) if step > 0 else k - 1 - below[::-1].argmax(axis=0)
        inner = np.clip(first - step, 0, k - 1)  # only used where `has`; clipped to stay in range elsewhere
        c0, c1 = c[inner, cols], c[first, cols]
        x0, x1 = x[inner], x[first]
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = (c0 - 0.5) / (c0 - c1)
            pos = x0 + frac * (x1 - x0)
        end = x[-1] if step > 0 else x[0]
        return np.where(has, pos, end), ~has

    right, open_r = crossing((idx > peak) & (c < 0.5), +1)
    left, open_l = crossing((idx < peak) & (c < 0.5), -1)
    width = right - left
    width[~(hi > lo)] = np.nan
    return width, open_r | open_l


@validate_params({"threshold": [None, Interval()]}, renamed={"ds": "obj"}, positional=("by", "threshold"))
@fill_doc
def number_map(
    obj: xr.Dataset,
    *,
    by: str = "numerosity",
    threshold: float | None = 2.0,
    ddof: int = 1,
    undefined: str = "nan",
    moments: GroupMoments | None = None,
) -> xr.Dataset:
    """Preferred numerosity, tuning width and selectivity of every unit.

    Parameters
    ----------
    %(sheet)s
        Its stimulus coord ``by`` holds numbers.
    %(by)s
        Numeric (numerosity).
    threshold : float or None
        Units whose d′ (preferred numerosity vs the rest) is not above it get NaN
        as preferred numerosity (as :func:`preference_map`); None keeps every unit.
    ddof, undefined, moments : see :func:`~cortexsim.analysis.dprime`.

    Returns
    -------
    Dataset over ``unit`` (unit coords kept):

    * ``preferred_numerosity`` — numerosity of the highest mean response (the
      tuning-curve peak), NaN where not selective;
    * ``tuning_width`` — full width at half maximum of the tuning curve, in
      numerosity units (:func:`half_max_width`); ``width_open`` marks curves that
      do not fall to half maximum on one side (width is a lower bound);
    * ``dprime`` — d′ of the preferred numerosity vs the rest; ``selective`` — d′ > threshold;
    * ``tuning`` (numerosity, unit) — mean response per numerosity.
    """
    m = moments_for(obj, by, moments)
    if m.groups.dtype.kind not in "iuf":
        raise SheetError(
            f"number_map needs a numeric stimulus coord; {by!r} holds {m.groups.dtype} values "
            f"{m.groups[:5].tolist()}. Use preference_map for categorical labels."
        )
    x = m.groups.astype(float)
    tuning = m.means()
    best = np.nanargmax(np.where(np.isnan(tuning), -np.inf, tuning), axis=0)
    sel = selectivity(obj, by=by, ddof=ddof, undefined=undefined, moments=m)
    d = np.asarray(sel.values)[best, np.arange(tuning.shape[1])]
    selective = d > threshold if threshold is not None else np.ones_like(d, dtype=bool)
    width, open_ended = half_max_width(x, tuning)
    coords: dict[str, Any] = {"numerosity": ("numerosity", x)}
    coords.update(unit_coords(obj))
    return xr.Dataset(
        {
            "preferred_numerosity": ("unit", np.where(selective, x[best], np.nan), {"long_name": "preferred numerosity"}),
            "tuning_width": ("unit", width, {"long_name": "full width at half maximum of the numerosity tuning curve",
                                             "units": "numerosity"}),
            "width_open": ("unit", open_ended, {"long_name": "tuning curve does not fall to half max on one side"}),
            "dprime": ("unit", d, {"long_name": "d-prime of the preferred numerosity vs the rest", "ddof": ddof}),
            "selective": ("unit", selective, {"long_name": f"d-prime > {threshold}"}),
            "tuning": (("numerosity", "unit"), tuning, {"long_name": "mean response per numerosity"}),
        },
        coords=coords,
        attrs={"by": by, "threshold": np.nan if threshold is None else float(threshold)},
    )


@validate_params({"orientation": [str], "sf": [None, str], "phase": [None, str]}, renamed={"ds": "obj"})
def orientation_map(
    obj: xr.Dataset,
    orientation: str = "orientation_deg",
    sf: str | None = "sf_cpd",
    phase: str | None = "phase",
) -> xr.Dataset:
    """Orientation tuning of every unit from a gratings Sheet.

    Responses are first averaged over phase (and any other stimulus coord) for
    each (orientation, SF) pair, giving R(θ, f). Then, per unit:

    * ``preferred_sf_cpd`` — the SF f* of the largest R(θ, f);
    * the orientation tuning curve r(θ) = R(θ, f*) at that SF, rectified
      r⁺ = max(r, 0) so that it can weight a vector average;
    * ``preferred_orientation_deg`` — θ_pref = ½·arg Σ r⁺(θ) e^{2iθ} in [0, 180)
      (vector average on the doubled-angle circle, since orientation has period 180°);
    * ``circular_variance`` — CV = 1 − |Σ r⁺ e^{2iθ}| / Σ r⁺ (0: responds to one
      orientation only, 1: untuned);
    * ``osi`` — (R_pref − R_orth) / (R_pref + R_orth) with R_pref = max r⁺ and
      R_orth = r⁺ at the sampled orientation closest to θ_max + 90°.

    Units with no positive response get NaN.

    Parameters
    ----------
    obj : Sheet with stimulus coord ``orientation`` (degrees) and optionally ``sf`` (cycles/deg)
    orientation, sf, phase : str
        Names of the stimulus coords; ``sf``/``phase`` may be absent from ``obj``.

    Returns
    -------
    Dataset over ``unit`` with the four maps above and ``tuning`` (orientation_deg, unit),
    r(θ) at the preferred SF.
    """
    check_sheet(obj, "orientation_map")
    theta = require_coord(obj, orientation).astype(float)
    ori_vals, ori_codes = group_codes(theta)
    if len(ori_vals) < 2:
        raise UndefinedStatisticError(f"orientation_map needs at least 2 orientations in {orientation!r}; got {ori_vals.tolist()}.")
    if sf is not None and sf in obj.coords:
        sf_vals, sf_codes = group_codes(require_coord(obj, sf).astype(float))
    else:
        sf_vals, sf_codes = np.array([np.nan]), np.zeros(len(theta), dtype=np.int64)
    n_o, n_f = len(ori_vals), len(sf_vals)
    codes = np.where((ori_codes >= 0) & (sf_codes >= 0), ori_codes * n_f + sf_codes, -1)
    m = moments_from_codes(obj, codes, np.arange(n_o * n_f), f"{orientation}|{sf}")
    with np.errstate(invalid="ignore", divide="ignore"):
        resp = (m.s1 / m.count[:, None] + m.shift).reshape(n_o, n_f, -1)  # NaN where a pair has no stimulus
    n_u = resp.shape[-1]
    flat = np.where(np.isnan(resp), -np.inf, resp).reshape(n_o * n_f, n_u)
    f_best = flat.argmax(axis=0) % n_f
    units = np.arange(n_u)
    r = resp[:, f_best, units]  # (n_o, U)
    rp = np.clip(np.nan_to_num(r, nan=0.0), 0.0, None)
    ang = np.deg2rad(2.0 * ori_vals)[:, None]
    total = rp.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (rp * np.exp(1j * ang)).sum(axis=0) / total
    dead = ~(total > 0)
    pref = np.mod(np.rad2deg(np.angle(z)) / 2.0, 180.0)
    cv = 1.0 - np.abs(z)
    i_max = rp.argmax(axis=0)
    dist = np.abs(((ori_vals[None, :] - (ori_vals[i_max] + 90.0)[:, None]) + 90.0) % 180.0 - 90.0)
    i_orth = dist.argmin(axis=1)
    r_pref, r_orth = rp[i_max, units], rp[i_orth, units]
    with np.errstate(invalid="ignore", divide="ignore"):
        osi = (r_pref - r_orth) / (r_pref + r_orth)
    for a in (pref, cv, osi):
        a[dead] = np.nan
    coords: dict[str, Any] = {orientation: (orientation, ori_vals)}
    coords.update(unit_coords(obj))
    return xr.Dataset(
        {
            "preferred_orientation_deg": ("unit", pref, {"long_name": "preferred orientation (vector average)",
                                                         "units": "degree", "period": 180.0}),
            "preferred_sf_cpd": ("unit", sf_vals[f_best], {"long_name": "preferred spatial frequency",
                                                           "units": "cycles/degree"}),
            "circular_variance": ("unit", cv, {"long_name": "circular variance of orientation tuning", "units": "1"}),
            "osi": ("unit", osi, {"long_name": "orientation selectivity index (Rpref-Rorth)/(Rpref+Rorth)",
                                  "units": "1"}),
            "tuning": ((orientation, "unit"), r, {"long_name": "mean response per orientation at the preferred SF"}),
        },
        coords=coords,
        attrs={"orientation": orientation, "sf": str(sf), "phase": str(phase),
               "method": "vector average of rectified responses on the doubled-angle circle"},
    )
