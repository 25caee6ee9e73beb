"""Category selectivity of every unit: d′ and Welch t.

For a unit with responses ``a`` to the target stimuli and ``b`` to the reference
stimuli (means μ, variances σ² with ``ddof=1`` by default, counts n)::

    d′ = (μ_a − μ_b) / sqrt((σ_a² + σ_b²) / 2)
    t  = (μ_a − μ_b) / sqrt(σ_a²/n_a + σ_b²/n_b)        (Welch; σ² always ddof=1)

``t`` equals ``scipy.stats.ttest_ind(a, b, equal_var=False).statistic``.
The reference is either every other labelled stimulus ("rest") or a named set
of categories. Any stimulus coord can define the categories (``domain``,
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

from ..errors import SheetError
from ._common import GroupMoments, check_sheet, find_group, group_moments, per_unit, unit_coords

_UNDEFINED = ("raise", "nan")


def moments_for(ds: xr.Dataset, by: str, moments: GroupMoments | None = None) -> GroupMoments:
    """Group moments of ``ds`` by ``by``; reuses ``moments`` when they match (saves a pass)."""
    if moments is not None:
        if moments.by != by or moments.s1.shape[1] != ds.sizes["unit"]:
            raise ValueError(
                f"moments were computed by {moments.by!r} for {moments.s1.shape[1]} units; "
                f"this call needs by={by!r} for {ds.sizes['unit']} units."
            )
        return moments
    check_sheet(ds, "selectivity")
    m = group_moments(ds, by)
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
            raise ValueError("reference is empty; pass None (every other category) or category names.")
        idx = [find_group(m.groups, r, m.by) for r in refs]
        if ia in idx:
            raise ValueError(f"target {target!r} is also in reference {refs!r}; a category cannot be its own reference.")
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


def _contrast(
    m: GroupMoments, a: np.ndarray, b: np.ndarray, stat: str, ddof: int, undefined: str, ids: np.ndarray, names: list[str]
) -> np.ndarray:
    """d′ or Welch t (K, U) of pools ``a`` vs ``b`` (each (K, G) membership)."""
    if undefined not in _UNDEFINED:
        raise ValueError(f"undefined must be 'raise' or 'nan'; got {undefined!r}.")
    dd = 1 if stat == "t" else ddof
    ma, va, na = m.mean_var(a, dd)
    mb, vb, nb = m.mean_var(b, dd)
    _check_counts(m, na, nb, names)
    if stat == "t":
        den = np.sqrt(va / na[:, None] + vb / nb[:, None])
    else:
        den = np.sqrt((va + vb) / 2.0)
    bad = ~(den > 0)
    stat_name = "d′" if stat == "dprime" else "t"
    if bad.all(axis=1).any():
        # Every unit constant: nothing to measure, whatever `undefined` says.
        raise SheetError(
            f"{stat_name} is undefined for every unit in contrast {names[int(np.argmax(bad.all(axis=1)))]!r}: "
            f"the responses are constant. Check the recording (a dead layer? constant stimuli?)."
        )
    if bad.any() and undefined == "nan":
        # Dead ReLU units are normal in real networks: NaN for them, and say how many.
        warnings.warn(
            f"{stat_name} is undefined (zero variance) for {int(bad.any(axis=0).sum())} of {bad.shape[1]} units "
            f"(e.g. dead ReLU units); they get NaN. Pass undefined='raise' to stop instead.",
            RuntimeWarning,
            stacklevel=4,
        )
    if bad.any() and undefined == "raise":
        k, u = np.nonzero(bad)
        raise SheetError(
            f"{stat_name} is undefined (zero variance on both sides, e.g. constant or "
            f"dead units) for {int(bad.any(axis=0).sum())} units (unit_id {ids[np.unique(u)][:8].tolist()}"
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
) -> xr.DataArray:
    if target is None:
        raise ValueError("target is required (e.g. target='faces'); use selectivity(ds, by=...) for every category.")
    m = moments_for(ds, by, moments)
    a, b, tval, refs = _contrast_matrices(m, target, reference)
    ids = np.asarray(ds["unit_id"].values)
    name = f"{tval} vs {'rest' if reference is None else '+'.join(map(str, refs))}"
    out = _contrast(m, a, b, stat, ddof, undefined, ids, [name])[0]
    long = "d-prime" if stat == "dprime" else "Welch t statistic"
    attrs = {
        "long_name": f"{long}, {by} {name}",
        "units": "1",
        "by": by,
        "target": str(tval),
        "reference": "rest" if reference is None else [str(r) for r in refs],
    }
    if stat == "dprime":
        attrs["ddof"] = ddof
    return per_unit(out, ds, stat, **attrs)


def dprime(
    ds: xr.Dataset,
    by: str = "domain",
    target: Any = None,
    reference: Sequence[Any] | Any | None = None,
    *,
    ddof: int = 1,
    undefined: str = "nan",
    moments: GroupMoments | None = None,
) -> xr.DataArray:
    """d′ of every unit for ``target`` against ``reference``.

    d′ = (μ_a − μ_b) / sqrt((σ_a² + σ_b²) / 2), σ² with ``ddof`` (default 1,
    the unbiased sample variance, as Welch's t uses).

    Parameters
    ----------
    ds : Sheet (numpy or dask backed)
    by : str
        Stimulus coord holding the categories (``domain``, ``category``, ``numerosity`` ...).
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
        contrast where *every* unit is constant always raises.
    moments : GroupMoments, optional
        Precomputed ``group_moments(ds, by)`` to skip the pass over ``responses``.

    Returns
    -------
    DataArray (unit,), name ``"dprime"``, with every unit coord of ``ds``.

    Raises
    ------
    SheetError
        ``by`` is not a stimulus coord, ``target``/``reference`` is not one of its
        values, a side has fewer than 2 stimuli, or d′ is undefined (see ``undefined``).
    """
    return _one_contrast(ds, by, target, reference, "dprime", ddof, undefined, moments)


def tstat(
    ds: xr.Dataset,
    by: str = "domain",
    target: Any = None,
    reference: Sequence[Any] | Any | None = None,
    *,
    undefined: str = "nan",
    moments: GroupMoments | None = None,
) -> xr.DataArray:
    """Welch t of every unit for ``target`` against ``reference``.

    t = (μ_a − μ_b) / sqrt(σ_a²/n_a + σ_b²/n_b) with σ² of ddof=1: identical to
    ``scipy.stats.ttest_ind(a, b, equal_var=False).statistic``. Parameters,
    return value and errors as :func:`dprime` (name ``"t"``).
    """
    return _one_contrast(ds, by, target, reference, "t", 1, undefined, moments)


def selectivity(
    ds: xr.Dataset,
    by: str = "domain",
    *,
    stat: str = "dprime",
    ddof: int = 1,
    undefined: str = "nan",
    moments: GroupMoments | None = None,
) -> xr.DataArray:
    """d′ (or Welch t) of every category against the rest, for every unit at once.

    Parameters
    ----------
    ds : Sheet
    by : str
        Stimulus coord holding the categories.
    stat : {"dprime", "t"}
    ddof, undefined, moments
        As in :func:`dprime`.

    Returns
    -------
    DataArray (category, unit), name ``stat``; ``category`` holds the sorted
    labels of ``by``; unit coords of ``ds`` kept; ``attrs["by"] = by``.
    """
    if stat not in ("dprime", "t"):
        raise ValueError(f"stat must be 'dprime' or 't'; got {stat!r}.")
    m = moments_for(ds, by, moments)
    g = len(m.groups)
    eye = np.eye(g)
    names = [f"{c} vs rest" for c in m.groups.tolist()]
    out = _contrast(m, eye, 1.0 - eye, stat, 1 if stat == "t" else ddof, undefined, np.asarray(ds["unit_id"].values), names)
    coords: dict[str, Any] = {"category": ("category", m.groups)}
    coords.update(unit_coords(ds))
    long = "d-prime" if stat == "dprime" else "Welch t statistic"
    return xr.DataArray(
        out,
        dims=("category", "unit"),
        coords=coords,
        name=stat,
        attrs={"long_name": f"{long} of each {by} vs the rest", "units": "1", "by": by, "stat": stat,
               **({"ddof": ddof} if stat == "dprime" else {})},
    )
