"""Category selectivity of every unit: d′ and Welch t.

For a unit with responses ``a`` to the target stimuli and ``b`` to the reference
stimuli (means μ, variances σ² with ``ddof=1`` by default, counts n)::

    d′ = (μ_a − μ_b) / sqrt((σ_a² + σ_b²) / 2)
    t  = (μ_a − μ_b) / sqrt(σ_a²/n_a + σ_b²/n_b)        (Welch; σ² always ddof=1)

``t`` equals ``scipy.stats.ttest_ind(a, b, equal_var=False).statistic``.
The reference is either every other labelled stimulus ("rest") or a named set
of categories.

Undefined units get NaN (with a warning; ``undefined="raise"`` stops instead):

* zero variance on both sides (constant or dead units);
* **near-constant units**: the pooled SD ``s = sqrt((σ_a² + σ_b²) / 2)`` is positive but
  below ``min_sd`` (default 0.001) times the median ``s`` of the units of the same area
  with ``s > 0``. Such a unit (e.g. a ReLU unit that fires, almost identically, to a few
  images of one category) gets a d′ in the hundreds or thousands that says nothing about
  selectivity and swamps area means and colour scales. ``min_sd=0`` turns the rule off.

NaN/±Inf responses raise a :class:`~cortexsim.SheetError` naming the stimuli and units
(``skipna=True`` leaves those stimuli out). Any stimulus coord can define the categories (``domain``,
``category``, ``numerosity``, ``macro_class`` ...).

All statistics come from :func:`~cortexsim.analysis._common.group_moments`: one
pass over ``responses`` (chunk by chunk for dask-backed Sheets), no loop over
units or stimuli. Results keep the Sheet's unit coords.
"""
from __future__ import annotations

import warnings

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from ..errors import ParameterError, SheetError
from ._params import Interval, Options, fill_doc, validate_params
from ._common import GroupMoments, check_sheet, find_group, group_moments, per_unit, unit_coords

_UNDEFINED = ("raise", "nan")


def moments_for(ds: xr.Dataset, by: str, moments: GroupMoments | None = None, *, skipna: bool = False,
                what: str = "selectivity") -> GroupMoments:
    """Group moments of ``ds`` by ``by``; reuses ``moments`` when they match (saves a pass)."""
    if moments is not None:
        if moments.by != by or moments.s1.shape[1] != ds.sizes["unit"]:
            raise ParameterError(
                f"moments were computed by {moments.by!r} for {moments.s1.shape[1]} units; "
                f"this call needs by={by!r} for {ds.sizes['unit']} units."
            )
        return moments
    check_sheet(ds, what)
    m = group_moments(ds, by=by, skipna=skipna, what=what)
    if len(m.groups) < 2:
        raise SheetError(
            f"the stimulus coord {by!r} has a single value {m.groups.tolist()}; a contrast needs "
            f"at least two categories."
        )
    return m


def _contrast_matrices(
    m: GroupMoments, target: Any, reference: Sequence[Any] | Any | None
) -> tuple[np.ndarray, np.ndarray, Any, list[Any]]:
    """(1, G) membership rows of the target and the reference pools."""
    g = len(m.groups)
    ia = find_group(m.groups, target, m.by)
    a = np.zeros((1, g))
    a[0, ia] = 1.0
    if reference is None:
        b = 1.0 - a
    else:
        refs = [reference] if isinstance(reference, (str, int, float, np.number)) else list(reference)
        if not refs:
            raise ParameterError("reference is empty; pass None (every other category) or category names.")
        idx = [find_group(m.groups, r, m.by) for r in refs]
        if ia in idx:
            raise ParameterError(f"target {target!r} is also in reference {refs!r}; a category cannot be its own reference.")
        b = np.zeros((1, g))
        b[0, idx] = 1.0
    ref_labels = m.groups[b[0] > 0].tolist()
    return a, b, m.groups.tolist()[ia], ref_labels


def _check_counts(m: GroupMoments, na: np.ndarray, nb: np.ndarray, names: list[str]) -> None:
    small = [f"{n} ({int(ca)} vs {int(cb)} stimuli)" for n, ca, cb in zip(names, na, nb) if ca < 2 or cb < 2]
    if small:
        singles = m.groups[m.count < 2].tolist()
        raise SheetError(
            f"a variance needs at least 2 stimuli per side, so the contrast is undefined for {', '.join(small)}"
            + (f"; categories with a single stimulus in {m.by!r}: {singles}" if singles else "")
            + ". Add stimuli or drop those categories (e.g. ds.isel(stimulus=mask))."
        )


def near_constant(sd: np.ndarray, areas: np.ndarray | None, min_sd: float) -> np.ndarray:
    """Units whose pooled SD (K, U) is positive but below ``min_sd`` × their area's median positive SD."""
    out = np.zeros(sd.shape, bool)
    if not min_sd > 0:
        return out
    groups = np.unique(areas) if areas is not None else [None]
    for g in groups:
        cols = slice(None) if g is None else np.flatnonzero(areas == g)
        block = sd[:, cols]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-zero rows: median of nothing
            typical = np.nanmedian(np.where(block > 0, block, np.nan), axis=1, keepdims=True)
        out[:, cols] = (block > 0) & (block < min_sd * typical)
    return out


def _check_min_sd(min_sd: float) -> float:
    if not (isinstance(min_sd, (int, float, np.number)) and np.isfinite(min_sd) and 0 <= min_sd < 1):
        raise ParameterError(f"min_sd must be a number in [0, 1) (a fraction of the area's median SD); got {min_sd!r}.")
    return float(min_sd)


def _contrast(
    m: GroupMoments, a: np.ndarray, b: np.ndarray, stat: str, ddof: int, undefined: str, ids: np.ndarray,
    names: list[str], areas: np.ndarray | None = None, min_sd: float = 0.0,
) -> np.ndarray:
    """d′ or Welch t (K, U) of pools ``a`` vs ``b`` (each (K, G) membership)."""
    if undefined not in _UNDEFINED:
        raise ParameterError(f"undefined must be 'raise' or 'nan'; got {undefined!r}.")
    min_sd = _check_min_sd(min_sd)
    dd = 1 if stat == "t" else ddof
    ma, va, na = m.mean_var(a, dd)
    mb, vb, nb = m.mean_var(b, dd)
    _check_counts(m, na, nb, names)
    if stat == "t":
        den = np.sqrt(va / na[:, None] + vb / nb[:, None])
    else:
        den = np.sqrt((va + vb) / 2.0)
    zero = ~(den > 0)
    tiny = near_constant(np.sqrt((va + vb) / 2.0), areas, min_sd) & ~zero
    bad = zero | tiny
    stat_name = "d′" if stat == "dprime" else "t"
    if zero.all(axis=1).any():
        # Every unit constant: nothing to measure, whatever `undefined` says.
        raise SheetError(
            f"{stat_name} is undefined for every unit in contrast {names[int(np.argmax(zero.all(axis=1)))]!r}: "
            f"the responses are constant. Check the recording (a dead layer? constant stimuli?)."
        )
    n_zero, n_tiny = int(zero.any(axis=0).sum()), int((tiny.any(axis=0) & ~zero.any(axis=0)).sum())
    why = " and ".join(
        ([f"zero variance for {n_zero}" if n_tiny else f"undefined (zero variance) for {n_zero}"] if n_zero else [])
        + ([f"a pooled SD below min_sd={min_sd:g} × the area's median for {n_tiny}"] if n_tiny else []))
    if bad.any() and undefined == "nan":
        # Dead ReLU units are normal in real networks: NaN for them, and say how many.
        warnings.warn(
            f"{stat_name} is {'undefined: ' if n_tiny else ''}{why} of {bad.shape[1]} units "
            f"(dead or near-constant units, e.g. dead ReLUs); they get NaN. Pass undefined='raise' to stop instead"
            + (", or min_sd=0 to keep the near-constant ones." if n_tiny else "."),
            RuntimeWarning,
            stacklevel=4,
        )
    if bad.any() and undefined == "raise":
        k, u = np.nonzero(bad)
        raise SheetError(
            f"{stat_name} is undefined ({'zero variance on both sides, e.g. constant or dead units' if n_zero else ''}"
            f"{'; ' if n_zero and n_tiny else ''}{'near-constant: pooled SD below min_sd × the area median' if n_tiny else ''})"
            f" for {int(bad.any(axis=0).sum())} units (unit_id {ids[np.unique(u)][:8].tolist()}"
            f"{'...' if len(np.unique(u)) > 8 else ''}) in contrast {names[k[0]]!r}. Pass undefined='nan' "
            f"to get NaN for them, or drop those units."
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (ma - mb) / den
    out[bad] = np.nan
    return out


def _one_contrast(
    ds: xr.Dataset,
    by: str,
    target: Any,
    reference: Sequence[Any] | Any | None,
    stat: str,
    ddof: int,
    undefined: str,
    moments: GroupMoments | None,
    min_sd: float = 0.0,
    skipna: bool = False,
) -> xr.DataArray:
    if target is None:
        raise ParameterError("target is required (e.g. target='faces'); use selectivity(ds, by=...) for every category.")
    _check_min_sd(min_sd)
    m = moments_for(ds, by, moments, skipna=skipna, what="d′" if stat == "dprime" else "t")
    a, b, tval, refs = _contrast_matrices(m, target, reference)
    ids = np.asarray(ds["unit_id"].values)
    name = f"{tval} vs {'rest' if reference is None else '+'.join(map(str, refs))}"
    out = _contrast(m, a, b, stat, ddof, undefined, ids, [name], _areas(ds), min_sd)[0]
    long = "d-prime" if stat == "dprime" else "Welch t statistic"
    attrs = {
        "long_name": f"{long}, {by} {name}",
        "units": "1",
        "by": by,
        "target": str(tval),
        "reference": "rest" if reference is None else [str(r) for r in refs],
        "min_sd": float(min_sd),
    }
    if stat == "dprime":
        attrs["ddof"] = ddof
    return per_unit(out, ds, stat, **attrs)


def _areas(ds: xr.Dataset) -> np.ndarray | None:
    return np.asarray(ds["area"].values).astype(str) if "area" in ds.coords else None


#: Default of ``min_sd``: a pooled SD under 0.1 % of the area's median marks a near-constant unit.
MIN_SD = 1e-3


@validate_params({"min_sd": [Interval(0, 1, "left")]}, renamed={"ds": "obj"}, positional=("by", "target", "reference"))
@fill_doc
def dprime(
    obj: xr.Dataset,
    *,
    by: str = "domain",
    target: Any = None,
    reference: Sequence[Any] | Any | None = None,
    ddof: int = 1,
    undefined: str = "nan",
    min_sd: float = MIN_SD,
    skipna: bool = False,
    moments: GroupMoments | None = None,
) -> xr.DataArray:
    """d′ of every unit for ``target`` against ``reference``.

    d′ = (μ_a − μ_b) / sqrt((σ_a² + σ_b²) / 2), σ² with ``ddof`` (default 1,
    the unbiased sample variance, as Welch's t uses).

    Parameters
    ----------
    %(sheet)s
    %(by)s
        E.g. ``domain``, ``category``, ``numerosity``.
    target : category label (``"faces"``, ``3`` ...)
    reference : label, list of labels or None
        None: every other labelled stimulus (rest). Stimuli with a missing label
        (NaN / "") belong to no category and are left out.
    ddof : int
        Delta degrees of freedom of σ².
    undefined : {"raise", "nan"}
        What to do where σ_a² + σ_b² = 0 (constant or dead units): NaN there with a
        ``RuntimeWarning`` giving the count (default — dead ReLU units are normal in
        real networks), or raise a :class:`~cortexsim.SheetError` naming them. A
        contrast where *every* unit is constant always raises. Near-constant units
        (see ``min_sd``) count as undefined too.
    min_sd : float in [0, 1)
        A unit whose pooled SD sqrt((σ_a² + σ_b²)/2) is below ``min_sd`` × the median
        pooled SD of its area's units (those with SD > 0) is near-constant: its d′ is
        undefined (huge values from a vanishing denominator). Default 0.001; 0 turns it off.
    %(skipna)s
    %(moments)s

    Returns
    -------
    DataArray (unit,), name ``"dprime"``, with every unit coord of ``ds``.

    Raises
    ------
    SheetError
        ``by`` is not a stimulus coord, ``target``/``reference`` is not one of its
        values, a side has fewer than 2 stimuli, or d′ is undefined (see ``undefined``).
    """
    return _one_contrast(obj, by, target, reference, "dprime", ddof, undefined, moments, min_sd, skipna)


@validate_params({"min_sd": [Interval(0, 1, "left")]}, renamed={"ds": "obj"}, positional=("by", "target", "reference"))
def tstat(
    obj: xr.Dataset,
    *,
    by: str = "domain",
    target: Any = None,
    reference: Sequence[Any] | Any | None = None,
    undefined: str = "nan",
    min_sd: float = MIN_SD,
    skipna: bool = False,
    moments: GroupMoments | None = None,
) -> xr.DataArray:
    """Welch t of every unit for ``target`` against ``reference``.

    t = (μ_a − μ_b) / sqrt(σ_a²/n_a + σ_b²/n_b) with σ² of ddof=1: identical to
    ``scipy.stats.ttest_ind(a, b, equal_var=False).statistic``. Parameters,
    return value and errors as :func:`dprime` (name ``"t"``; the ``min_sd`` rule
    uses the same pooled SD, with ddof=1).
    """
    return _one_contrast(obj, by, target, reference, "t", 1, undefined, moments, min_sd, skipna)


@validate_params({"min_sd": [Interval(0, 1, "left")], "stat": [Options(("dprime", "t"))]},
                 renamed={"ds": "obj"}, positional=("by",))
@fill_doc
def selectivity(
    obj: xr.Dataset,
    *,
    by: str = "domain",
    stat: str = "dprime",
    ddof: int = 1,
    undefined: str = "nan",
    min_sd: float = MIN_SD,
    skipna: bool = False,
    moments: GroupMoments | None = None,
) -> xr.DataArray:
    """d′ (or Welch t) of every category against the rest, for every unit at once.

    Parameters
    ----------
    %(sheet)s
    %(by)s
    stat : {"dprime", "t"}
    ddof, undefined, min_sd, skipna, moments
        As in :func:`dprime`.

    Returns
    -------
    DataArray (category, unit), name ``stat``; ``category`` holds the sorted
    labels of ``by``; unit coords of ``ds`` kept; ``attrs["by"] = by``.
    """
    _check_min_sd(min_sd)
    m = moments_for(obj, by, moments, skipna=skipna)
    g = len(m.groups)
    eye = np.eye(g)
    names = [f"{c} vs rest" for c in m.groups.tolist()]
    out = _contrast(m, eye, 1.0 - eye, stat, 1 if stat == "t" else ddof, undefined, np.asarray(obj["unit_id"].values),
                    names, _areas(obj), min_sd)
    coords: dict[str, Any] = {"category": ("category", m.groups)}
    coords.update(unit_coords(obj))
    long = "d-prime" if stat == "dprime" else "Welch t statistic"
    return xr.DataArray(
        out,
        dims=("category", "unit"),
        coords=coords,
        name=stat,
        attrs={"long_name": f"{long} of each {by} vs the rest", "units": "1", "by": by, "stat": stat,
               "min_sd": float(min_sd),
               **({"ddof": ddof} if stat == "dprime" else {})},
    )
