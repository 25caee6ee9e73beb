"""Shared helpers of the analyses: responses, stimulus groups, unit coords, grids.

Stable helpers that every analysis module may import:

* :func:`check_sheet` / :func:`responses` — the Sheet's ``responses`` as a
  (stimulus, unit) DataArray (numpy or dask), extra ``time``/``repeat`` dims averaged;
* :func:`nonfinite_masks` / :func:`finite_stimuli` / :func:`finite_sheet` — the one place
  where NaN/Inf responses are detected and reported (``skipna=True`` leaves those stimuli out);
* :func:`require_coord` — a stimulus coord, or a :class:`~cortexsim.SheetError`
  saying which coords exist;
* :func:`group_codes` / :func:`group_moments` — per-group count, mean and
  (shifted) sum of squares of every unit's responses, in **one pass** over the
  data (a one-hot matmul, chunk by chunk on dask sheets);
* :func:`unit_coords` / :func:`per_unit` — carry the unit coords (area, layer,
  channel, row, col, x_mm, y_mm[, z_mm], unit_id) onto per-unit results;
* :func:`grid_rowcol` — the units' (row, col) when they tile a regular grid.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import SheetError
from ..sheet import OPTIONAL_DIMS, validate_sheet
from ._params import validate_params

#: Unit coords copied onto per-unit results (``z_mm`` only when present).
UNIT_COORD_NAMES: tuple[str, ...] = ("area", "layer", "channel", "row", "col", "x_mm", "y_mm", "z_mm", "unit_id")


def check_sheet(ds: Any, what: str = "this analysis") -> xr.Dataset:
    """Validate the schema of ``ds`` (not its values) and return it.

    Raises
    ------
    SheetError
        ``ds`` is not a Sheet; the message names the analysis that needed one.
    """
    if isinstance(ds, xr.DataArray):
        raise SheetError(
            f"{what} needs a Sheet (xarray.Dataset with 'responses'); got a DataArray "
            f"{ds.name!r} with dims {ds.dims}."
        )
    try:
        return validate_sheet(ds, check_values=False)
    except SheetError as exc:
        raise SheetError(f"{what} needs a valid Sheet: {exc}") from exc


def responses(ds: xr.Dataset) -> xr.DataArray:
    """``responses`` as (stimulus, unit), averaged over ``time``/``repeat`` if present.

    Stays lazy (dask) when the Sheet is.
    """
    resp = ds["responses"]
    extra = [d for d in resp.dims if d in OPTIONAL_DIMS]
    if extra:
        resp = resp.mean(dim=extra)
    return resp.transpose("stimulus", "unit")


def nonfinite_masks(data: Any) -> tuple[np.ndarray, np.ndarray]:
    """Which stimuli (rows) and which units (columns) of a (stimulus, unit) array hold NaN/±Inf.

    One pass over ``data`` (numpy, or dask chunk by chunk). Returns two bool arrays
    ``(n_stimuli,)`` and ``(n_units,)``.
    """
    if hasattr(data, "dask"):
        import dask
        import dask.array as da

        bad = ~da.isfinite(data)
        rows, cols = dask.compute(bad.any(axis=1), bad.any(axis=0))
        return np.asarray(rows), np.asarray(cols)
    bad = ~np.isfinite(np.asarray(data))
    return bad.any(axis=1), bad.any(axis=0)


def finite_stimuli(ds: xr.Dataset, bad_rows: np.ndarray, bad_cols: np.ndarray, what: str | None, skipna: bool,
                   unit_ids: np.ndarray | None = None, scope: str = "") -> np.ndarray:
    """The stimuli to keep when some responses are NaN/±Inf; the one message for non-finite input.

    Parameters
    ----------
    ds : the Sheet the masks describe (for stimulus ids in the message)
    bad_rows, bad_cols : bool (n_stimuli,), (n_units,) from :func:`nonfinite_masks`
    what : the analysis, named in the message; None: an analysis without a ``skipna`` option
    skipna : leave the affected stimuli out (with a ``RuntimeWarning``) instead of raising
    unit_ids : ids of the columns when the masks cover only some units (default ``ds.unit_id``)
    scope : e.g. " that the sampled pairs use", when the masks cover only some units

    Returns
    -------
    bool (n_stimuli,): True for the stimuli to use (all True when everything is finite).

    Raises
    ------
    SheetError
        Non-finite responses and ``skipna`` is False, or every stimulus has one.
    """
    bad_rows, bad_cols = np.asarray(bad_rows, bool), np.asarray(bad_cols, bool)
    if not bad_rows.any():
        return np.ones(bad_rows.shape, bool)
    if unit_ids is None:
        unit_ids = np.asarray(ds["unit_id"].values) if "unit_id" in ds.coords else np.arange(len(bad_cols))
    sid = np.asarray(ds["stimulus_id"].values)[bad_rows][:5].tolist() if "stimulus_id" in ds.coords else []
    uid = np.asarray(unit_ids)[np.flatnonzero(bad_cols)[:5]].tolist()
    where = (f"{int(bad_rows.sum())} of {len(bad_rows)} stimuli (stimulus_id {sid}{'...' if bad_rows.sum() > 5 else ''}) "
             f"and {int(bad_cols.sum())} of {len(bad_cols)} units{scope} (unit_id {uid}"
             f"{'...' if bad_cols.sum() > 5 else ''})")
    if bad_rows.all():
        raise SheetError(
            f"{what or 'the analysis'}: the responses hold NaN/Inf in every stimulus ({where}), so no stimulus is usable; "
            f"drop the non-finite units first: ds.isel(unit=np.isfinite(ds.responses).all('stimulus')).")
    if not skipna:
        raise SheetError(
            f"{what or 'the analysis'} needs finite responses; they hold NaN/Inf in {where}. "
            + ("Leave those stimuli out with skipna=True, or drop them" if what else "Drop those stimuli")
            + ": ds.isel(stimulus=np.isfinite(ds.responses).all('unit')).")
    warnings.warn(f"{what}: left out {int(bad_rows.sum())} stimuli with NaN/Inf responses ({where}); "
                  f"skipna=True.", RuntimeWarning, stacklevel=3)
    return ~bad_rows


def finite_sheet(ds: xr.Dataset, what: str | None, skipna: bool = False) -> xr.Dataset:
    """``ds`` if its responses are finite, else ``ds`` without the non-finite stimuli (``skipna``) or an error.

    Costs one pass over ``responses`` (see :func:`finite_stimuli` for the message and rules).
    """
    rows, cols = nonfinite_masks(responses(ds).data)
    if not rows.any():
        return ds
    return ds.isel(stimulus=np.flatnonzero(finite_stimuli(ds, rows, cols, what, skipna)))


def require_coord(ds: xr.Dataset, name: str, dim: str = "stimulus") -> np.ndarray:
    """Values of the coord ``name`` along ``dim`` as a numpy array.

    Raises
    ------
    SheetError
        The coord is missing or lies along another dim; lists the coords that exist.
    """
    if name not in ds.coords or ds[name].dims != (dim,):
        have = sorted(str(c) for c in ds.coords if ds[c].dims == (dim,))
        raise SheetError(
            f"the Sheet has no {dim} coord {name!r}; {dim} coords are {have}. "
            f"Record with a stimulus set that labels its stimuli by {name!r}, or pass by=<one of those>."
        )
    return np.asarray(ds[name].values)


def _is_missing(values: np.ndarray) -> np.ndarray:
    """Labels that mark a stimulus as outside every group (NaN, None, '', 'nan')."""
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind in "OUS":
        s = values.astype(str)
        return (s == "") | (s == "nan") | (s == "None")
    return np.zeros(values.shape, bool)


def group_codes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique labels and each stimulus's group index (-1: unlabelled, left out).

    Parameters
    ----------
    labels : ndarray (n_stimuli,)

    Returns
    -------
    groups : ndarray (n_groups,), sorted (numerically for numbers)
    codes : ndarray of int64 (n_stimuli,)
    """
    labels = np.asarray(labels)
    missing = _is_missing(labels)
    groups = np.unique(labels[~missing])
    codes = np.full(labels.shape, -1, dtype=np.int64)
    codes[~missing] = np.searchsorted(groups, labels[~missing])
    return groups, codes


def find_group(groups: np.ndarray, value: Any, by: str) -> int:
    """Index of ``value`` in ``groups`` (matching ``3`` and ``"3"`` alike).

    Raises
    ------
    SheetError
        Unknown value; the message lists the values the coord has.
    """
    numeric = groups.dtype.kind in "iuf" and isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    hits = np.flatnonzero(groups == value) if numeric else np.flatnonzero(groups.astype(str) == str(value))
    if len(hits) == 0:
        raise SheetError(
            f"{by}={value!r} is not a value of the stimulus coord {by!r}; values are {groups.tolist()}."
        )
    return int(hits[0])


@dataclass(frozen=True)
class GroupMoments:
    """Sufficient statistics of every unit's responses per stimulus group.

    Sums are of the *shifted* responses ``x - shift`` (``shift`` = the first
    stimulus's response), which keeps the sum-of-squares variance formula
    accurate when means are large relative to the spread. Pools of groups are
    exact: add their ``count``, ``s1`` and ``s2`` rows.

    Attributes
    ----------
    by : str                    the stimulus coord that defines the groups
    groups : ndarray (G,)       group labels, sorted
    count : ndarray (G,)        stimuli per group
    s1 : ndarray (G, U)         Σ (x - shift) per group, float64
    s2 : ndarray (G, U)         Σ (x - shift)² per group, float64
    shift : ndarray (U,)        per-unit shift
    """

    by: str
    groups: np.ndarray
    count: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    shift: np.ndarray

    def pooled(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(n, Σ, Σ²) of pools of groups; ``weights`` is (K, G) 0/1 membership."""
        w = np.asarray(weights, dtype=float)
        return w @ self.count, w @ self.s1, w @ self.s2

    def mean_var(self, weights: np.ndarray, ddof: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean (K, U), variance (K, U) with ``ddof`` and count (K,) of pools of groups."""
        n, s1, s2 = self.pooled(weights)
        nn = n[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            m = s1 / nn
            var = np.maximum(s2 - s1 * m, 0.0) / (nn - ddof)
        return m + self.shift, var, n

    def means(self) -> np.ndarray:
        """Mean response (G, U) of every group."""
        return self.mean_var(np.eye(len(self.groups)))[0]


@validate_params({"by": [str, list, tuple]}, renamed={"ds": "obj"}, positional=("by",))
def group_moments(obj: xr.Dataset, *, by: str | list[str], skipna: bool = False,
                  what: str | None = None) -> GroupMoments:
    """Per-group moments of every unit's responses, reading ``responses`` once.

    Parameters
    ----------
    obj : Sheet (numpy or dask backed)
    by : str or list of str
        Stimulus coord(s) defining the groups. Several coords group by their
        combination; the labels are then strings ``"a|b"`` (see :func:`combined_labels`).
    skipna : bool
        Stimuli with a NaN/±Inf response are left out (with a warning) instead of raising
        a :class:`~cortexsim.SheetError`.
    what : str, optional
        The analysis, named in the error messages (None: one without a ``skipna`` option).

    Returns
    -------
    GroupMoments

    Notes
    -----
    The sums are one-hot matmuls ``Gᵀ X`` and ``Gᵀ X²``: for a dask-backed Sheet
    both are reduced chunk by chunk in a single ``dask.compute`` (one read of the
    file), so memory stays bounded by a few chunks plus the (G, U) results.
    """
    keys = [by] if isinstance(by, str) else list(by)
    labels = combined_labels(obj, keys)
    groups, codes = group_codes(labels)
    if len(groups) == 0:
        raise SheetError(f"every stimulus has a missing {keys} label; nothing to group.")
    return moments_from_codes(obj, codes, groups, "|".join(keys), skipna=skipna, what=what)


def moments_from_codes(ds: xr.Dataset, codes: np.ndarray, groups: np.ndarray, by: str, *,
                       skipna: bool = False, what: str | None = None) -> GroupMoments:
    """:func:`group_moments` for precomputed group indices ``codes`` (n_stimuli,), -1 = left out.

    Groups without stimuli get ``count`` 0 (their mean is NaN). NaN/±Inf responses are found
    in the same pass as the sums (see :func:`finite_stimuli`); with ``skipna`` their stimuli
    are left out and the sums are taken again.
    """
    resp = responses(ds)
    data = resp.data
    codes = np.asarray(codes, dtype=np.int64)
    keep = np.ones(len(codes), bool)
    for attempt in range(2):
        onehot = np.zeros((len(codes), len(groups)))
        ok = (codes >= 0) & keep
        onehot[np.flatnonzero(ok), codes[ok]] = 1.0
        first = int(np.argmax(keep))  # the shift comes from a usable stimulus
        shift = np.asarray(resp.isel(stimulus=first).values, dtype=np.float64)
        if hasattr(data, "dask"):
            import dask
            import dask.array as da

            x = data.astype(np.float64) - shift[None, :]
            if not keep.all():  # 0 × NaN is NaN: zero the left-out rows, not just their weights
                x = da.where(da.from_array(keep[:, None], chunks=(data.chunks[0], 1)), x, 0.0)
            gt = da.from_array(onehot.T, chunks=(len(groups), data.chunks[0]))
            if attempt == 0:
                bad = ~da.isfinite(data)
                with warnings.catch_warnings():  # NaN sums are found and reported below, not by numpy
                    warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
                    s1, s2, rows, cols = dask.compute(gt @ x, gt @ (x * x), bad.any(axis=1), bad.any(axis=0))
            else:
                s1, s2 = dask.compute(gt @ x, gt @ (x * x))
        else:
            raw = np.asarray(data)
            if attempt == 0:
                bad = ~np.isfinite(raw)  # in memory: find them before summing, no second pass
                rows, cols = bad.any(axis=1), bad.any(axis=0)
                if rows.any():
                    keep = finite_stimuli(ds, rows, cols, what, skipna)
                    continue
            x = raw.astype(np.float64) - shift[None, :]
            x[~keep] = 0.0
            s1, s2 = onehot.T @ x, onehot.T @ (x * x)
            break
        if attempt == 1 or not np.asarray(rows).any():
            break
        keep = finite_stimuli(ds, rows, cols, what, skipna)
    return GroupMoments(
        by=by, groups=groups, count=onehot.sum(axis=0), s1=np.asarray(s1), s2=np.asarray(s2), shift=shift
    )


def combined_labels(ds: xr.Dataset, keys: list[str]) -> np.ndarray:
    """Labels of one stimulus coord, or ``"a|b"`` strings combining several."""
    cols = [require_coord(ds, k) for k in keys]
    if len(cols) == 1:
        return cols[0]
    frame = pd.DataFrame({k: c for k, c in zip(keys, cols)})
    missing = np.any([_is_missing(c) for c in cols], axis=0)
    out = frame.astype(str).agg("|".join, axis=1).to_numpy()
    out[missing] = ""
    return out


def unit_coords(obj: xr.Dataset | xr.DataArray) -> dict[str, xr.DataArray]:
    """The per-unit coords of a Sheet or per-unit result (only those present)."""
    return {c: obj[c] for c in UNIT_COORD_NAMES if c in obj.coords and obj[c].dims == ("unit",)}


def per_unit(
    values: Any, like: xr.Dataset | xr.DataArray, name: str, dims: tuple[str, ...] = ("unit",), **attrs: Any
) -> xr.DataArray:
    """Wrap ``values`` (unit last) as a DataArray carrying ``like``'s unit coords."""
    return xr.DataArray(values, dims=dims, coords=unit_coords(like), name=name, attrs=attrs)


def grid_rowcol(obj: xr.Dataset | xr.DataArray) -> tuple[np.ndarray, np.ndarray] | None:
    """(row, col) int arrays when the units tile a regular grid, else ``None``.

    A grid means every unit has ``row >= 0`` and ``col >= 0`` and no two units
    share a (row, col) cell — true for Reset tilings and square grids, false for
    retinotopic sheets (many channels per feature-map position), channel-level
    layouts (row = col = -1) or several areas mixed.
    """
    if "row" not in obj.coords or "col" not in obj.coords:
        return None
    row = np.asarray(obj["row"].values, dtype=np.int64)
    col = np.asarray(obj["col"].values, dtype=np.int64)
    if row.size == 0 or row.min() < 0 or col.min() < 0:
        return None
    flat = row * (col.max() + 1) + col
    if len(np.unique(flat)) != len(flat):
        return None
    return row, col


#: A vector is constant (its Pearson r / cosine undefined) when its (centred) L2 norm is at most
#: PEARSON_RTOL × sqrt(n) × its largest |value|: rounding residue, not signal. One rule for every
#: correlation in the analyses (smoothness, RDMs, class-weight RSMs).
PEARSON_RTOL = 1e-12


def undefined_norm(sq_norm: Any, max_abs: Any, n: int) -> np.ndarray:
    """True where a vector of ``n`` values with squared (centred) norm ``sq_norm`` and largest
    ``|value|`` ``max_abs`` counts as constant (:data:`PEARSON_RTOL`); arrays broadcast.
    NaN (non-finite values) is not "constant": callers report non-finite data themselves."""
    sq_norm, max_abs = np.asarray(sq_norm, dtype=np.float64), np.asarray(max_abs, dtype=np.float64)
    return np.sqrt(np.maximum(sq_norm, 0.0)) <= PEARSON_RTOL * np.sqrt(max(n, 1)) * max_abs


def pearson_normalise(x: Any, axis: int = -1, *, center: bool = True,
                      dtype: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """``x`` with every vector along ``axis`` centred (``center``) and scaled to unit L2 norm.

    The dot product of two normalised vectors is then their Pearson r (``center=True``) or
    cosine similarity (``center=False``). Means and norms are accumulated in float64 whatever
    ``dtype`` (the output's; default ``x``'s float type), so a constant float32 vector centres to
    exactly 0.

    Returns
    -------
    z : ndarray, shape of ``x``; NaN along constant vectors (see :func:`undefined_norm`)
    defined : bool ndarray, ``x``'s shape without ``axis``
    """
    x = np.asarray(x)
    dtype = np.dtype(dtype) if dtype is not None else np.result_type(x.dtype, np.float32)
    n = x.shape[axis]
    mean = x.mean(axis=axis, keepdims=True, dtype=np.float64) if center else 0.0
    z = (x - np.asarray(mean).astype(dtype)).astype(dtype, copy=False)
    sq = np.sum(np.square(z, dtype=np.float64), axis=axis, keepdims=True)
    max_abs = np.max(np.abs(x), axis=axis, keepdims=True) if n else np.zeros_like(sq)
    bad = undefined_norm(sq, max_abs, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = z / np.where(bad, np.nan, np.sqrt(sq)).astype(dtype)
    return z, ~np.squeeze(bad, axis=axis)


def category_coords(labels: Any) -> dict[str, Any]:
    """Coords of a ``category`` dim, plus ``class`` (same labels; the previous release's dim name).

    Index ``class`` with ``.set_xindex("class")`` so ``.sel({"class": ...})`` keeps working.
    """
    labels = np.asarray(labels)
    return {"category": ("category", labels), "class": ("category", labels, {"deprecated": "use category"})}


def as_numpy(values: Any) -> np.ndarray:
    """Values of a (possibly dask-backed) DataArray or array as numpy."""
    if isinstance(values, xr.DataArray):
        return np.asarray(values.values)
    return np.asarray(values)


def jsonable(value: Any) -> Any:
    """Plain-Python form of numpy scalars/arrays for JSON and netCDF attrs (NaN kept).

    The one sanitiser is :func:`cortexsim.jsonattrs.to_jsonable`; this is it with ``nonfinite="keep"``.
    """
    from ..jsonattrs import to_jsonable

    return to_jsonable(value, nonfinite="keep")
