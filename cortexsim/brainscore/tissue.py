"""A topographic benchmark: :func:`tissue_correlation` (runs without Brain-Score).

Brain-Score 2.4.2 scores responses, not maps. This compares how a Sheet area's
pairwise response correlation falls off with cortical distance with the same
curve in a lab's recording (sites with ``tissue_x`` / ``tissue_y`` in mm): the
definitions are in :mod:`cortexsim.brainscore.tissue_core` — per distance bin
(the same edges in mm for both), 1 − the Kolmogorov–Smirnov statistic between
the model's and the data's distributions of pair correlations; the raw score
is the mean over bins, in [0, 1].

Ceiling: split halves of the neural data — the score of one half of the
repetitions against the other (halves of the stimuli when there is one
repetition), averaged over random splits. ``score = min(1, raw / ceiling)``.
A position-shuffled control (the model's positions permuted, correlations kept)
gives the score of a model with no topography. It is not 0: far bins, where
correlations are near 0 with or without a map, match anyway (on smooth-map
data: raw 0.86 for the map, 0.60 shuffled, ceiling 0.91). ``normalized =
(raw − shuffled_raw) / (ceiling − shuffled_raw)``, clipped to [0, 1], puts the
shuffle at 0 and the ceiling at 1.

:func:`cortexsim.brainscore.benchplugin.write_tissue_benchmark` exports the same
benchmark as Brain-Score benchmark + metric plugin folders.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import xarray as xr

from cortexsim.errors import BrainScoreError

from . import tissue_core as core
from .exchange import load_neural, model_responses, select_area


@dataclass(frozen=True)
class TissueResult:
    """Result of :func:`tissue_correlation`; per-bin arrays have one value per distance bin.

    ``score``: ceiled (``min(1, raw / ceiling)``); ``raw``: mean KS similarity over usable
    bins; ``shuffled_raw``: the same with the model's positions permuted; ``normalized``:
    ``(raw − shuffled_raw) / (ceiling − shuffled_raw)`` clipped to [0, 1].
    """

    region: str
    area: str
    score: float
    raw: float
    ceiling: float
    ceiling_sd: float
    shuffled_raw: float
    normalized: float
    edges_mm: np.ndarray
    similarity: np.ndarray
    model_mean_r: np.ndarray
    data_mean_r: np.ndarray
    model_pairs: np.ndarray
    data_pairs: np.ndarray
    n_stimuli: int
    n_units: int
    n_sites: int

    def to_dataset(self) -> xr.Dataset:
        """Per-bin curves as a Dataset over ``distance_mm`` (bin centres), scores in attrs."""
        centres = (self.edges_mm[:-1] + self.edges_mm[1:]) / 2
        data = {k: ("distance_mm", getattr(self, k)) for k in
                ("similarity", "model_mean_r", "data_mean_r", "model_pairs", "data_pairs")}
        attrs = {k: v for k, v in asdict(self).items() if isinstance(v, (int, float, str))}
        return xr.Dataset(data, coords={"distance_mm": centres}, attrs=attrs)

    def __str__(self) -> str:
        return (f"tissue correlation {self.region} (area {self.area}): score {self.score:.4f}  raw {self.raw:.4f}  "
                f"ceiling {self.ceiling:.4f} ± {self.ceiling_sd:.4f}  position-shuffled {self.shuffled_raw:.4f}  "
                f"normalized {self.normalized:.4f}  "
                f"[{self.n_stimuli} stimuli, {self.n_units} units, {self.n_sites} sites, "
                f"{len(self.edges_mm) - 1} bins to {self.edges_mm[-1]:.2f} mm]")


def neural_repetitions(data: xr.DataArray, stimulus_ids: np.ndarray) -> np.ndarray:
    """(repetition, stimulus, site) array of a validated neural DataArray, stimuli in ``stimulus_ids`` order.

    Raises BrainScoreError when a stimulus lacks a repetition (the split halves need full repetitions).
    """
    stim = {s: k for k, s in enumerate(stimulus_ids)}
    s_idx = np.fromiter((stim[s] for s in data["stimulus_id"].values), dtype=np.int64, count=data.sizes["presentation"])
    if "repetition" in data.coords:
        reps, r_idx = np.unique(np.asarray(data["repetition"].values), return_inverse=True)
    else:
        reps, r_idx = np.zeros(1), np.zeros(data.sizes["presentation"], dtype=np.int64)
    out = np.full((len(reps), len(stimulus_ids), data.sizes["neuroid"]), np.nan)
    out[r_idx, s_idx] = np.asarray(data.values, dtype=np.float64)
    if np.isnan(out).any():
        missing = int(np.isnan(out[:, :, 0]).sum())
        raise BrainScoreError(f"{missing} (repetition, stimulus) presentations are missing; every stimulus needs "
                              f"every repetition (drop incomplete repetitions or stimuli).")
    return out


def site_positions(data: xr.DataArray) -> np.ndarray:
    """(sites, 2 | 3) positions (mm) from the neural data's ``tissue_x`` / ``tissue_y`` (/ ``tissue_z``)."""
    if "tissue_x" not in data.coords or "tissue_y" not in data.coords:
        raise BrainScoreError("the neural data have no recording-site positions: add tissue_x and tissue_y (mm) "
                              "coords on the neuroid dim (e.g. electrode positions on the array).")
    names = [n for n in ("tissue_x", "tissue_y", "tissue_z") if n in data.coords]
    pos = np.stack([np.asarray(data[n].values, dtype=np.float64) for n in names], axis=1)
    if not np.isfinite(pos).all():
        raise BrainScoreError("tissue_x / tissue_y hold NaN or inf; every site needs a position.")
    return pos


def distance_edges(bins: Any, data_distances: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin edges (mm): ``bins`` checked, or ``n_bins`` equal bins up to the largest site distance."""
    if bins is None:
        try:
            return core.default_edges(data_distances, n_bins)
        except ValueError as exc:
            raise BrainScoreError(str(exc)) from None
    edges = np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or len(edges) < 2 or not (np.diff(edges) > 0).all() or edges[0] < 0:
        raise BrainScoreError(f"bins must be increasing distance edges in mm (≥ 0); got {bins!r}.")
    return edges


def tissue_correlation(sheet: Any, neural: Any, *, region: str | None = None, area: str | None = None,
                       bins: Any = None, n_bins: int = 10, max_pairs: int = core.MAX_PAIRS,
                       min_pairs: int = core.MIN_PAIRS, ceiling_splits: int = 10, seed: int = 0) -> TissueResult:
    """Compare a Sheet area's correlation-vs-distance structure with neural data's (see module docstring).

    Parameters
    ----------
    sheet : Sheet (Dataset or file) with positions ``x_mm`` / ``y_mm``
    neural : neural data as for :func:`cortexsim.brainscore.score`, with ``tissue_x`` / ``tissue_y`` (mm) per
        neuroid; ``(presentation, neuroid)``, optionally with repetitions
    region, area : as in :func:`cortexsim.brainscore.score`
    bins : distance bin edges in mm (default: ``n_bins`` equal bins up to the largest site distance)
    max_pairs : pairs sampled per side (all pairs when there are fewer)
    min_pairs : pairs a bin needs on both sides to count
    ceiling_splits : random split halves for the ceiling
    seed : seed of pair sampling, the split halves and the position shuffle

    Returns
    -------
    TissueResult

    Raises
    ------
    BrainScoreError
        No ``tissue_x`` / ``tissue_y``, non-matching stimulus ids, unknown region, fewer than 3
        stimuli, no bin with enough pairs on both sides.
    """
    data = load_neural(neural)
    positions = site_positions(data)
    neural_region = None
    if "region" in data.coords:
        regions = np.unique(np.asarray(data["region"].values).astype(str))
        neural_region = str(regions[0]) if len(regions) == 1 else None
    sub, area, region = select_area(sheet, region, area, neural_region)
    stimulus_ids = np.asarray(list(dict.fromkeys(data["stimulus_id"].values.tolist())))
    if len(stimulus_ids) < 3:
        raise BrainScoreError(f"tissue correlation needs ≥ 3 stimuli for correlations; got {len(stimulus_ids)}.")
    model = model_responses(sub, stimulus_ids)
    model_pos = np.stack([model["tissue_x"].values, model["tissue_y"].values]
                         + ([model["tissue_z"].values] if "tissue_z" in model.coords else []), axis=1)
    reps = neural_repetitions(data, stimulus_ids)
    data_c = core.correlations_by_distance(reps.mean(axis=0), positions, max_pairs, seed)
    edges = distance_edges(bins, data_c[0], n_bins)
    i, j = core.sample_pairs(model.sizes["neuroid"], max_pairs, seed)
    r = core.pair_correlations(core.zscore(model.values), i, j)
    dist = np.sqrt(((model_pos[i] - model_pos[j]) ** 2).sum(axis=1))
    result = core.compare((dist, r), data_c, edges, min_pairs)
    if not np.isfinite(result["score"]):
        raise BrainScoreError(f"no distance bin holds {min_pairs} pairs of both the model and the data (bins "
                              f"{np.round(edges, 3).tolist()} mm; model pairs per bin {result['model_pairs'].tolist()},"
                              f" data {result['data_pairs'].tolist()}); check that both are in mm or pass bins=.")
    perm = np.random.default_rng(seed + 1).permutation(len(model_pos))
    shuffled_pos = model_pos[perm]
    shuffled = core.compare((np.sqrt(((shuffled_pos[i] - shuffled_pos[j]) ** 2).sum(axis=1)), r), data_c, edges,
                            min_pairs)["score"]
    ceiling, ceiling_sd = core.split_half_ceiling(reps, positions, edges, ceiling_splits, seed, max_pairs, min_pairs)
    score = min(1.0, result["score"] / ceiling) if ceiling > 0 else float("nan")
    span = ceiling - float(shuffled)
    normalized = float(np.clip((result["score"] - shuffled) / span, 0, 1)) if span > 0 else float("nan")
    return TissueResult(region=region, area=area, score=score, raw=result["score"], ceiling=ceiling,
                        ceiling_sd=ceiling_sd, shuffled_raw=float(shuffled), normalized=normalized, edges_mm=edges,
                        similarity=result["similarity"], model_mean_r=result["model_mean_r"],
                        data_mean_r=result["data_mean_r"], model_pairs=result["model_pairs"],
                        data_pairs=result["data_pairs"], n_stimuli=len(stimulus_ids), n_units=model.sizes["neuroid"],
                        n_sites=len(positions))
