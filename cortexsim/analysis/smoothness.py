"""Spatial smoothness of a cortical map: similarity vs distance, and Moran's I.

``smoothness`` follows TDANN (Margalit et al. 2024): tuning similarity of pairs of
units as a function of their cortical distance, against the same curve after the
unit positions are shuffled. ``morans_i`` is the classic spatial autocorrelation
statistic (Moran 1950; moments under normality and randomisation as in
Cliff & Ord 1981 / PySAL ``esda.Moran``).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import xarray as xr
from scipy import stats
from scipy.spatial import cKDTree

from ..errors import ParameterError, SheetError, UndefinedStatisticError
from ..seeding import numpy_rng
from ._common import check_sheet, finite_stimuli, pearson_normalise, responses
from ._params import Interval, Options, fill_doc, validate_params
from ._grid import positions_of, select_area, unit_values

_METRICS = ("auto", "correlation", "absdiff", "circular")


# --------------------------------------------------------------------------- smoothness


def _bin_edges(bins: int | np.ndarray, max_distance_mm: float) -> np.ndarray:
    if np.ndim(bins) == 0:
        n = int(bins)
        if n < 1:
            raise ParameterError(f"bins must be a positive int or an array of edges; got {bins!r}.")
        return np.linspace(0.0, max_distance_mm, n + 1)
    edges = np.asarray(bins, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ParameterError("bin edges must be a 1-D increasing array of at least 2 distances (mm).")
    return edges


def sample_pairs(
    pos: np.ndarray, n_pairs: int, max_distance_mm: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Unit pairs (a, b) covering distances 0…max_distance_mm roughly uniformly.

    Uniformly drawn pairs on a large sheet are almost all far apart, leaving the
    short distances that matter most nearly empty. So each pair is an anchor unit
    drawn uniformly plus the unit nearest to a point at a distance drawn uniformly
    in [0, max_distance_mm] and a uniform direction. When the sheet has at most
    ``n_pairs`` pairs, all of them are returned (exact, deterministic).
    """
    n = len(pos)
    if n * (n - 1) // 2 <= n_pairs:
        a, b = np.triu_indices(n, k=1)
        return a, b
    a = rng.integers(0, n, size=n_pairs)
    r = rng.uniform(0.0, max_distance_mm, size=n_pairs)
    phi = rng.uniform(0.0, 2 * np.pi, size=n_pairs)
    target = pos[a] + np.stack([r * np.cos(phi), r * np.sin(phi)], axis=1)
    _, b = cKDTree(pos).query(target, k=1, workers=-1)
    keep = a != b
    return a[keep], b[keep]


def _zscore_columns(resp: Any, sel: np.ndarray, ds: xr.Dataset | None = None, skipna: bool = False) -> np.ndarray:
    """Responses of units ``sel`` (stimulus × len(sel)), centred and unit-norm per unit, float32.

    Reads only the selected units (chunk by chunk for dask). Constant units become NaN.
    NaN/±Inf among them raise a SheetError naming the stimuli, or (``skipna``) leave those
    stimuli out.
    """
    order = np.argsort(sel)  # sorted fancy indexing reads contiguous chunks
    block = resp[:, sel[order]]
    block = np.asarray(block.compute() if hasattr(block, "compute") else block, dtype=np.float32)
    bad = ~np.isfinite(block)
    if bad.any():
        ids = np.asarray(ds["unit_id"].values)[sel[order]] if "unit_id" in ds.coords else sel[order]
        keep = finite_stimuli(ds, bad.any(axis=1), bad.any(axis=0), "smoothness", skipna, ids,
                              scope=" that the sampled pairs use")
        block = block[keep]
        if len(block) < 2:
            raise UndefinedStatisticError("smoothness: fewer than 2 stimuli have finite responses; a correlation needs 2.")
    z = np.empty_like(block)
    z[:, order] = pearson_normalise(block, axis=0, dtype=np.float32)[0]
    return z


def _pair_correlation(z: np.ndarray, ia: np.ndarray, ib: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Pearson r of the normalised columns ia[k], ib[k] (sum of products), chunked over pairs."""
    out = np.empty(len(ia), dtype=np.float64)
    for s in range(0, len(ia), chunk):
        e = s + chunk
        out[s:e] = np.einsum("sp,sp->p", z[:, ia[s:e]], z[:, ib[s:e]], dtype=np.float64)
    return out


def _value_difference(v: np.ndarray, ia: np.ndarray, ib: np.ndarray, metric: str, period: float) -> np.ndarray:
    d = np.abs(v[ia] - v[ib])
    if metric == "circular":
        d = np.mod(d, period)
        d = np.minimum(d, period - d)
    return d


def _bin_means(dist: np.ndarray, sim: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    idx = np.searchsorted(edges, dist, side="right") - 1
    ok = np.isfinite(sim) & (idx >= 0) & (idx < len(edges) - 1)
    # the last edge is inclusive so a pair exactly at max_distance_mm counts
    ok |= np.isfinite(sim) & (dist == edges[-1])
    idx = np.minimum(idx, len(edges) - 2)
    count = np.bincount(idx[ok], minlength=len(edges) - 1)
    total = np.bincount(idx[ok], sim[ok], minlength=len(edges) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count, count


def _resolve_metric(obj: Any, metric: str) -> str:
    if metric not in _METRICS:
        raise ParameterError(f"metric must be one of {_METRICS}; got {metric!r}.")
    if isinstance(obj, xr.Dataset):
        if metric not in ("auto", "correlation"):
            raise ParameterError(f"a Sheet is compared by response correlation; metric={metric!r} needs a per-unit map.")
        return "correlation"
    if metric != "auto":
        if metric == "correlation":
            raise ParameterError("metric='correlation' needs a Sheet (responses); a per-unit map uses 'absdiff' or 'circular'.")
        return metric
    name = str(getattr(obj, "name", "") or "")
    periodic = "period" in getattr(obj, "attrs", {}) or "orientation" in name
    return "circular" if periodic else "absdiff"


@validate_params({"n_pairs": [Interval(1, None, integer=True)], "max_distance_mm": [None, Interval(0, None, "neither")],
                  "shuffle": [bool], "metric": [Options(_METRICS)], "period": [None, Interval(0, None, "neither")]},
                 renamed={"ds_or_values": "obj"}, positional=("seed", "shuffle"))
@fill_doc
def smoothness(
    obj: xr.Dataset | xr.DataArray,
    bins: int | np.ndarray = 10,
    max_distance_mm: float | None = None,
    n_pairs: int = 20_000,
    *,
    seed: int = 0,
    shuffle: bool = True,
    metric: str = "auto",
    period: float | None = None,
    area: str | None = None,
    skipna: bool = False,
) -> xr.Dataset:
    """Tuning similarity as a function of cortical distance, vs a position-shuffled sheet.

    Parameters
    ----------
    obj : Sheet or DataArray over ``unit``
        A Sheet: pair similarity is the Pearson correlation of the two units'
        response profiles across stimuli (``time``/``repeat`` dims averaged
        first). A per-unit map (e.g. preferred orientation) with x_mm/y_mm
        coords: pair similarity is the absolute difference of the values
        (circular difference for orientation) — *lower means more similar*.
        Units with NaN values are left out.
    bins : int or array of edges (mm)
        Number of equal distance bins in [0, max_distance_mm], or the edges.
    max_distance_mm : float, optional
        Largest distance considered. Default: half of the sheet's shorter side.
    n_pairs : int
        Pairs drawn (seeded) when the sheet has more pairs than this; anchors are
        uniform and partners are drawn at uniform distances (see
        :func:`sample_pairs`) so every bin is populated. Smaller sheets use all pairs.
    %(seed)s
    shuffle : bool
        Also compute the curve with unit positions shuffled (the null: the
        similarity of the same-distance pairs drawn from a random permutation of
        the sampled units).
    metric : {"auto", "correlation", "absdiff", "circular"}
        ``"auto"``: correlation for a Sheet; circular for a DataArray named
        like orientation or carrying a ``period`` attr; else absdiff.
    period : float, optional
        Period of circular values (default the DataArray's ``period`` attr or 180°).
    %(area)s
    skipna : bool
        Sheet input: leave out stimuli with NaN/±Inf responses in the sampled units
        (with a warning) instead of raising a SheetError.

    Returns
    -------
    xarray.Dataset
        dim ``distance_bin`` (bin centres, mm; coords ``bin_lower``/``bin_upper``),
        vars ``similarity``, ``similarity_shuffled`` (if ``shuffle``), ``n_pairs``
        (pairs with a defined similarity per bin); attrs ``metric``, ``max_distance_mm``,
        ``seed``, ``sampling`` ("all pairs" or "sampled").

    Raises
    ------
    SheetError
        No positions, NaN responses (unless ``skipna``), a mixed-area input without
        ``area``, fewer than 2 units / stimuli, every unit at one position, no unit pair
        within ``max_distance_mm``, every unit constant / NaN (no similarity defined).
    ValueError
        Bad bins / metric / n_pairs / max_distance_mm.
    """
    obj = select_area(obj, area)
    metric = _resolve_metric(obj, metric)
    pos = positions_of(obj)
    if metric == "correlation":
        sheet = check_sheet(obj, "smoothness")
        if sheet.sizes["stimulus"] < 2:
            raise SheetError(f"smoothness of a Sheet correlates response profiles across stimuli, so it needs at "
                             f"least 2 stimuli; got {sheet.sizes['stimulus']}.")
        resp = responses(sheet).data  # time/repeat averaged
        keep = np.arange(len(pos))
    else:
        v_all = unit_values(obj)
        keep = np.flatnonzero(np.isfinite(v_all))
        if keep.size < 2:
            raise UndefinedStatisticError("fewer than 2 units have a finite value; smoothness needs a map with values.")
        pos = pos[keep]
    n = len(pos)
    if n < 2:
        raise UndefinedStatisticError(f"smoothness needs at least 2 units; got {n}.")
    extent = pos.max(axis=0) - pos.min(axis=0)
    if not extent.max() > 0:
        raise UndefinedStatisticError(f"all {n} units lie at one position; smoothness over cortical distance is undefined.")
    if max_distance_mm is None:
        # half the sheet's shorter side (its longer one for a line of units)
        max_distance_mm = 0.5 * float(extent.min() if extent.min() > 0 else extent.max())
    edges = _bin_edges(bins, float(max_distance_mm))
    rng = numpy_rng(seed)  # the one seed scheme (= default_rng(seed))
    a, b = sample_pairs(pos, int(n_pairs), float(edges[-1]), rng)
    dist = np.hypot(*(pos[a] - pos[b]).T)
    if not np.any((dist >= edges[0]) & (dist <= edges[-1])):
        nearest = float(cKDTree(pos).query(pos, k=2)[0][:, 1].min())
        raise UndefinedStatisticError(
            f"no unit pair lies within the distance bins [{edges[0]:g}, {edges[-1]:g}] mm (the nearest two units "
            f"are {nearest:g} mm apart; the sheet spans {' × '.join(f'{e:g}' for e in extent)} mm). Pass "
            f"max_distance_mm of at least {2 * nearest:g} mm (and bins to match).")
    sampling = "all pairs" if len(a) == n * (n - 1) // 2 else "sampled"

    # Work on the set of units the pairs touch; the shuffle permutes within it.
    sel, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    ia, ib = inv[: len(a)], inv[len(a) :]
    perm = rng.permutation(len(sel))
    if metric == "correlation":
        z = _zscore_columns(resp, keep[sel], sheet, skipna)
        sim = _pair_correlation(z, ia, ib)
        sim_shuf = _pair_correlation(z, perm[ia], perm[ib]) if shuffle else None
        if not np.isfinite(sim).any():
            raise UndefinedStatisticError(
                "every sampled unit has constant responses across stimuli, so response correlation "
                "is undefined; check the recording (e.g. dead ReLU units) or use more stimuli."
            )
        long_name = "mean Pearson correlation of response profiles"
    else:
        v = v_all[keep][sel]
        p = float(period if period is not None else getattr(obj, "attrs", {}).get("period", 180.0))
        if np.ptp(v) == 0:
            raise UndefinedStatisticError("the map is constant; smoothness of a constant map is undefined.")
        sim = _value_difference(v, ia, ib, metric, p)
        sim_shuf = _value_difference(v, perm[ia], perm[ib], metric, p) if shuffle else None
        long_name = f"mean {'circular ' if metric == 'circular' else ''}absolute difference (lower = more similar)"

    mean, count = _bin_means(dist, sim, edges)
    centres = 0.5 * (edges[:-1] + edges[1:])
    coords = {
        "distance_bin": ("distance_bin", centres, {"units": "mm", "long_name": "bin centre (cortical distance)"}),
        "bin_lower": ("distance_bin", edges[:-1], {"units": "mm"}),
        "bin_upper": ("distance_bin", edges[1:], {"units": "mm"}),
    }
    data = {
        "similarity": ("distance_bin", mean, {"long_name": long_name}),
        "n_pairs": ("distance_bin", count, {"long_name": "pairs with a defined similarity"}),
    }
    if shuffle:
        data["similarity_shuffled"] = ("distance_bin", _bin_means(dist, sim_shuf, edges)[0], {"long_name": long_name + ", positions shuffled"})
    return xr.Dataset(
        data,
        coords=coords,
        attrs={
            "metric": metric,
            "max_distance_mm": float(edges[-1]),
            "seed": int(seed),
            "sampling": sampling,
            "n_pairs_sampled": int(len(a)),
        },
    )


# --------------------------------------------------------------------------- Moran's I


def spatial_weights(pos: np.ndarray, radius_mm: float | None = None, k: int | None = None) -> sp.csr_matrix:
    """Binary spatial weight matrix (scipy.sparse CSR, n × n, zero diagonal).

    ``radius_mm``: w_ij = 1 when 0 < d_ij ≤ radius (symmetric). ``k``: w_ij = 1
    when j is one of the k nearest neighbours of i (not symmetric in general).
    """
    if (radius_mm is None) == (k is None):
        raise ParameterError("give exactly one of radius_mm (distance band, mm) or k (nearest neighbours).")
    from ._neighbours import knn_pairs, radius_pairs

    n = len(pos)
    if radius_mm is not None:
        pairs = radius_pairs(pos, radius_mm)
        rows = np.concatenate([pairs[:, 0], pairs[:, 1]])
        cols = np.concatenate([pairs[:, 1], pairs[:, 0]])
    else:
        rows, cols = knn_pairs(pos, k).T  # the neighbour graph's k neighbours (its edges: their union)
    w = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    w.sum_duplicates()
    w.data[:] = 1.0
    return w


@validate_params(renamed={"values": "obj", "ds_or_positions": "positions", "permutations": "n_perm"},
                 positional=("positions",))
@fill_doc
def morans_i(
    obj: xr.DataArray | np.ndarray,
    *,
    positions: xr.Dataset | xr.DataArray | np.ndarray | None = None,
    radius_mm: float | None = None,
    k: int | None = None,
    n_perm: int = 0,
    seed: int = 0,
) -> xr.Dataset:
    """Moran's I of a per-unit map with a binary distance-band or k-NN weight matrix.

    I = (n / S0) · Σ_ij w_ij z_i z_j / Σ_i z_i², z = x − mean(x), S0 = Σ_ij w_ij.

    Parameters
    ----------
    obj : DataArray over ``unit`` (with x_mm/y_mm) or ndarray (n_units,)
        Units with NaN values are dropped before the weights are built.
    positions : Sheet, DataArray or ndarray (n_units, 2), optional
        Where the positions come from when ``obj`` carries none.
    radius_mm, k : float / int
        Exactly one: neighbours within ``radius_mm`` (w_ij = 1 for 0 < d ≤ r), or
        the ``k`` nearest neighbours of each unit — the same k neighbours as the
        neighbour graph and the clustering index (:mod:`cortexsim.analysis._neighbours`).
    %(n_perm)s
        0 (default): no permutation null.
    %(seed)s

    Old names (deprecated, one release): ``values``, ``ds_or_positions``, ``permutations``, ``positions``
    by position;
    outputs ``p_sim`` and ``I_null`` (dim ``permutation``) are kept next to the new ones.

    Returns
    -------
    xarray.Dataset
        scalars ``I``, ``expected_I`` (= −1/(n−1)), ``variance_norm``, ``z_norm``,
        ``p_norm`` (two-sided, normality assumption), ``variance_rand``, ``z_rand``,
        ``p_rand`` (randomisation assumption); with ``n_perm`` also ``p_value``
        (one-sided in the direction of the observed I, (count+1)/(P+1) as PySAL)
        and ``null`` (dim ``perm``): I of each permuted map.
    """
    v = unit_values(obj, "values")
    source = positions if positions is not None else obj
    pos = positions_of(source)
    if len(pos) != len(v):
        raise SheetError(f"{len(v)} values but {len(pos)} positions; give one value per unit.")
    ok = np.isfinite(v)
    v, pos = v[ok], pos[ok]
    n = len(v)
    if n < 4:
        raise UndefinedStatisticError(f"Moran's I needs at least 4 units with finite values; got {n}.")
    z = v - v.mean()
    m2 = float(z @ z)
    if m2 <= 1e-300 or np.ptp(v) == 0:
        raise UndefinedStatisticError("the map is constant; Moran's I is undefined for zero variance.")
    w = spatial_weights(pos, radius_mm, k)
    s0 = float(w.sum())
    if s0 == 0:
        raise UndefinedStatisticError(f"no unit has a neighbour within radius_mm={radius_mm}; use a larger radius.")
    I = n / s0 * float(z @ (w @ z)) / m2
    ei = -1.0 / (n - 1)
    ws = w + w.T
    s1 = 0.5 * float(ws.multiply(ws).sum())
    s2 = float(((np.asarray(w.sum(axis=1)).ravel() + np.asarray(w.sum(axis=0)).ravel()) ** 2).sum())
    var_norm = (n * n * s1 - n * s2 + 3 * s0 * s0) / ((n * n - 1) * s0 * s0) - ei * ei
    kurt = (np.sum(z**4) / n) / (m2 / n) ** 2
    a = n * ((n * n - 3 * n + 3) * s1 - n * s2 + 3 * s0 * s0)
    b = kurt * ((n * n - n) * s1 - 2 * n * s2 + 6 * s0 * s0)
    var_rand = (a - b) / ((n - 1) * (n - 2) * (n - 3) * s0 * s0) - ei * ei
    z_norm = (I - ei) / np.sqrt(var_norm)
    z_rand = (I - ei) / np.sqrt(var_rand) if var_rand > 0 else np.nan
    out = {
        "I": I,
        "expected_I": ei,
        "variance_norm": var_norm,
        "z_norm": z_norm,
        "p_norm": 2 * stats.norm.sf(abs(z_norm)),
        "variance_rand": var_rand,
        "z_rand": z_rand,
        "p_rand": 2 * stats.norm.sf(abs(z_rand)) if np.isfinite(z_rand) else np.nan,
    }
    data: dict[str, Any] = {name: ((), val) for name, val in out.items()}
    if n_perm > 0:
        rng = numpy_rng(seed)  # the one seed scheme (= default_rng(seed))
        null = np.empty(int(n_perm))
        batch = max(1, min(int(n_perm), 20_000_000 // n))
        for s in range(0, int(n_perm), batch):
            nb = min(batch, int(n_perm) - s)
            zp = z[np.argsort(rng.random((n, nb)), axis=0)]  # each column a relabelling
            null[s : s + nb] = n / s0 * np.einsum("ip,ip->p", zp, w @ zp) / m2
        larger = int(np.sum(null >= I))
        larger = min(larger, int(n_perm) - larger)
        data["p_value"] = ((), (larger + 1) / (int(n_perm) + 1))
        data["null"] = ("perm", null)
        # the names of the previous release, for one more (deprecated; same values)
        data["p_sim"] = ((), (larger + 1) / (int(n_perm) + 1), {"deprecated": "use p_value"})
        data["I_null"] = ("permutation", null, {"deprecated": "use null (dim perm)"})
    return xr.Dataset(
        data,
        attrs={
            "n_units": n,
            "weights": f"radius {radius_mm} mm" if radius_mm is not None else f"{k} nearest neighbours",
            "S0": s0,
            "n_perm": int(n_perm),
            "seed": int(seed),
        },
    )
