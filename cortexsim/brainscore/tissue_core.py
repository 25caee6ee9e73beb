"""Pairwise response correlation as a function of cortical distance — numpy / scipy only.

This file is also copied verbatim into the Brain-Score metric plugin that
``cortexsim brainscore tissue --plugin`` writes, so it imports nothing from cortexsim
and runs under numpy 1.26 / scipy of the Brain-Score environment.

Definitions (after Lee et al. 2020, the tissue benchmark Brain-Score never merged):

* units ``i, j`` (model units or recording sites) with positions ``p`` (mm) and
  responses to the same ``S`` stimuli; ``r_ij`` = Pearson correlation across
  stimuli, ``d_ij = |p_i − p_j|``;
* pairs are binned by distance with the same edges (mm) for model and data;
* per bin ``b``: similarity ``s_b = 1 − KS(r_model | b, r_data | b)``, the two-sample
  Kolmogorov–Smirnov statistic between the two distributions of pair correlations
  (1: identical distributions, 0: disjoint), as Brain-Score's earlier
  tissue-correlation work scored it;
* score = mean of ``s_b`` over the bins that hold at least ``min_pairs`` pairs in
  both — a number in [0, 1].

Large layers: pairs are a seeded random sample of ``max_pairs`` (all pairs when
there are fewer), drawn without a Python loop; correlations are computed in
chunks from z-scored responses.
"""
from __future__ import annotations

import numpy as np

MAX_PAIRS = 200_000
MIN_PAIRS = 10


def zscore(responses: np.ndarray) -> np.ndarray:
    """(stimuli, units) -> z-scored over stimuli (population SD; constant units become 0)."""
    x = np.asarray(responses, dtype=np.float64)
    x = x - x.mean(axis=0)
    sd = x.std(axis=0)
    return np.divide(x, sd, out=np.zeros_like(x), where=sd > 0)


def sample_pairs(n_units: int, max_pairs: int = MAX_PAIRS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``i < j``: all of them, or ``max_pairs`` distinct ones drawn at random (seeded)."""
    total = n_units * (n_units - 1) // 2
    if total <= max_pairs:
        return np.triu_indices(n_units, k=1)
    rng = np.random.default_rng(seed)
    flat = np.unique(rng.integers(0, total, size=int(max_pairs * 1.05) + 16))[:max_pairs]
    rng.shuffle(flat)
    flat = np.sort(flat[:max_pairs])
    # invert the row-major enumeration of the upper triangle: pair k -> (i, j)
    n = n_units
    i = (n - 2 - np.floor(np.sqrt(-8.0 * flat + 4.0 * n * (n - 1) - 7) / 2.0 - 0.5)).astype(np.int64)
    j = (flat + i + 1 - n * (n - 1) // 2 + (n - i) * ((n - i) - 1) // 2).astype(np.int64)
    return i, j


def pair_correlations(z: np.ndarray, i: np.ndarray, j: np.ndarray, chunk: int = 50_000) -> np.ndarray:
    """Pearson r of unit pairs (i, j) from z-scored responses (stimuli, units)."""
    out = np.empty(len(i))
    for start in range(0, len(i), chunk):  # chunks of pairs bound the memory to stimuli × chunk
        a, b = i[start:start + chunk], j[start:start + chunk]
        out[start:start + chunk] = np.einsum("sp,sp->p", z[:, a], z[:, b]) / z.shape[0]
    return out


def correlations_by_distance(responses: np.ndarray, positions: np.ndarray, max_pairs: int = MAX_PAIRS,
                             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(distance mm, correlation) of unit pairs; responses (stimuli, units), positions (units, 2 | 3)."""
    pos = np.asarray(positions, dtype=np.float64)
    i, j = sample_pairs(pos.shape[0], max_pairs, seed)
    dist = np.sqrt(((pos[i] - pos[j]) ** 2).sum(axis=1))
    return dist, pair_correlations(zscore(responses), i, j)


def ks_similarity(p: np.ndarray, q: np.ndarray) -> float:
    """1 − the two-sample Kolmogorov–Smirnov statistic (1: same distribution)."""
    from scipy.stats import ks_2samp

    return 1.0 - float(ks_2samp(p, q).statistic)


def compare(model: tuple[np.ndarray, np.ndarray], data: tuple[np.ndarray, np.ndarray], edges: np.ndarray,
            min_pairs: int = MIN_PAIRS) -> dict[str, np.ndarray | float]:
    """Score the model's (distance, r) pairs against the data's on distance bins ``edges`` (mm).

    Returns a dict: ``score`` (mean KS similarity over usable bins, in [0, 1]; NaN when no bin
    is usable), and per bin ``similarity``, ``model_mean_r``, ``data_mean_r``, ``model_pairs``,
    ``data_pairs`` (NaN / 0 where a bin has too few pairs).
    """
    edges = np.asarray(edges, dtype=np.float64)
    n_bins = len(edges) - 1
    bm = np.digitize(model[0], edges) - 1
    bd = np.digitize(data[0], edges) - 1
    sim = np.full(n_bins, np.nan)
    mean_m, mean_d = np.full(n_bins, np.nan), np.full(n_bins, np.nan)
    count_m = np.bincount(bm[(bm >= 0) & (bm < n_bins)], minlength=n_bins)
    count_d = np.bincount(bd[(bd >= 0) & (bd < n_bins)], minlength=n_bins)
    for b in range(n_bins):  # one KS test per distance bin (≈ 10), not per pair
        rm, rd = model[1][bm == b], data[1][bd == b]
        if len(rm):
            mean_m[b] = rm.mean()
        if len(rd):
            mean_d[b] = rd.mean()
        if len(rm) >= min_pairs and len(rd) >= min_pairs:
            sim[b] = ks_similarity(rm, rd)
    usable = np.isfinite(sim)
    return {"score": float(sim[usable].mean()) if usable.any() else float("nan"), "similarity": sim,
            "model_mean_r": mean_m, "data_mean_r": mean_d, "model_pairs": count_m, "data_pairs": count_d}


def default_edges(data_distances: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """``n_bins`` equal bins from 0 to the largest distance between recording sites (mm)."""
    top = float(np.max(data_distances)) if len(data_distances) else 0.0
    if not top > 0:
        raise ValueError("the recording sites all sit at one position; tissue correlation needs distances > 0")
    return np.linspace(0.0, top * (1 + 1e-9), n_bins + 1)


def split_half_ceiling(repetitions: np.ndarray, positions: np.ndarray, edges: np.ndarray, splits: int = 10,
                       seed: int = 0, max_pairs: int = MAX_PAIRS, min_pairs: int = MIN_PAIRS) -> tuple[float, float]:
    """Mean (and SD) over random halves of the data of the score of one half against the other.

    ``repetitions``: (repetitions, stimuli, units) with ≥ 2 repetitions (split into halves of
    repetitions), or (1, stimuli, units) (then the stimuli are split into halves).
    """
    reps = np.asarray(repetitions, dtype=np.float64)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(splits):  # a handful of random halves
        if reps.shape[0] >= 2:
            order = rng.permutation(reps.shape[0])
            half = reps.shape[0] // 2
            a, b = reps[order[:half]].mean(axis=0), reps[order[half:2 * half]].mean(axis=0)
        else:
            order = rng.permutation(reps.shape[1])
            half = reps.shape[1] // 2
            a, b = reps[0, order[:half]], reps[0, order[half:2 * half]]
        ca = correlations_by_distance(a, positions, max_pairs, seed)
        cb = correlations_by_distance(b, positions, max_pairs, seed)
        values.append(compare(ca, cb, edges, min_pairs)["score"])
    values = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(values)), float(np.nanstd(values))
