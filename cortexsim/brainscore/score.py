"""Brain-Score's own metrics on a Sheet: :func:`score`.

The Sheet area and the neural data become Brain-Score ``NeuroidAssembly``
objects inside the Brain-Score environment (through NetCDF files), and
brainscore-vision's metric plugins score them there, offline:

=====================  ==========================================================
metric                 Brain-Score metric (2.4.2)
=====================  ==========================================================
``pls``                ``pls_cv``: 25-component PLS regression, 10 stratified
                       90 / 10 splits, Pearson r per neuroid, median over neuroids
``ridge``              ``ridge_cv``: ridge regression (α = 1), same splits
``linear_predictivity`` ordinary least squares, same splits
``neuron_to_neuron``   best single model unit per neuroid, same splits
``reverse_pls``        PLS from neural data to model units (Muzellec & Kar)
``rdm`` / ``rdm_cv``   Spearman r of the RDMs' upper triangles (``_cv``: 10 splits)
``cka`` / ``cka_cv``   unbiased linear CKA (``_cv``: 10 splits)
=====================  ==========================================================

Ceiling: when the neural data have repetitions, Brain-Score's
``internal_consistency`` (split-half Pearson r per neuroid across stimuli,
Spearman-Brown corrected, median over neuroids, 10 splits) for the regression
metrics — the ceiled score is then Brain-Score 2.4.2's explained variance
raw² / ceiling — and the same split-half procedure with the RDM / CKA metric
itself for ``rdm`` / ``cka`` (ceiled score raw / ceiling). The metrics see the
repetition-averaged data. A stimulus-shuffled control (model rows permuted) gives
the chance level of every metric in the same run.

Cross-validation stratifies on ``object_name`` (Brain-Score's default). With
``stratification_coord="auto"`` the neural data's ``object_name`` is used, else
the Sheet's ``category`` coord (falling back to random splits when that coord is
too fine: fewer than 2 stimuli per class, or more classes than a 10 % test split
holds); pass a coord name to stratify on it (then such a coord is an error), or
None for plain random splits.

Cost: PLS on many units is slow — 25k units × 200 stimuli took 547 s in
Brain-Score on a busy 2-core machine (benchmarks/brainscore_bench.py; ≈ 100 s on an
idle one). ``n_components`` (PCA of the model responses over the scored stimuli,
as Brain-Score's layer selection does with 1,000 components) or ``max_units`` (a
seeded random subset of units, keeping their positions) make it fast. PCA keeps
every component up to the number of stimuli, so it loses nothing for the metrics
that see the responses only up to a rotation of the units — pls (Brain-Score's
``scale=False``), ridge, linear_predictivity, cka: same score (0.0634 both ways
in the benchmark), 21 s instead of 547 s. It does change rdm (correlation
distance across units) and neuron_to_neuron (single units).
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from cortexsim.errors import BrainScoreError

from .env import find_env
from .exchange import load_neural, model_responses, select_area, write_exchange

METRICS: tuple[str, ...] = ("pls", "ridge", "linear_predictivity", "neuron_to_neuron", "reverse_pls",
                            "rdm", "rdm_cv", "cka", "cka_cv")
_CROSS_VALIDATED = ("pls", "ridge", "linear_predictivity", "neuron_to_neuron", "reverse_pls", "rdm_cv", "cka_cv")
#: Above this many units, warn that PLS is slow without n_components / max_units.
SLOW_UNITS = 10_000


@dataclass(frozen=True)
class ScoreResult:
    """One metric's result.

    ``score`` is the ceiled score when a ceiling exists (``ceiling_rule`` says how),
    else ``raw``. ``error`` is the standard error of ``raw`` over cross-validation
    splits (None for the split-free ``rdm`` / ``cka``). ``shuffled_raw`` is the
    raw score with the model's stimuli permuted (chance level).
    """

    metric: str
    brainscore_id: str
    region: str
    area: str
    score: float
    raw: float
    error: float | None
    ceiling: float | None
    ceiling_error: float | None
    ceiling_rule: str
    shuffled_raw: float | None
    shuffled_error: float | None
    n_stimuli: int
    n_units: int
    n_neuroids: int
    reduction: str
    seconds: float
    total_seconds: float

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return asdict(self)

    def __str__(self) -> str:
        def f(v: float | None) -> str:
            return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"

        text = (f"{self.metric} {self.region} (area {self.area}): score {f(self.score)}  raw {f(self.raw)} ± "
                f"{f(self.error)}  ceiling {f(self.ceiling)}")
        if self.shuffled_raw is not None:
            text += f"  shuffled {f(self.shuffled_raw)}"
        return text + f"  [{self.n_stimuli} stimuli, {self.n_units} units, {self.n_neuroids} neuroids]"


def _stratification(coord: str | None, neural: xr.DataArray, sub: xr.Dataset,
                    stimulus_ids: np.ndarray) -> np.ndarray | None:
    """Per-stimulus class labels (in ``stimulus_ids`` order) for stratified splits, or None."""
    if coord is None:
        return None
    first = {s: i for i, s in reversed(list(enumerate(neural["stimulus_id"].values)))}
    idx = np.array([first[s] for s in stimulus_ids])
    if coord == "auto":
        if "object_name" in neural.coords:
            return np.asarray(neural["object_name"].values)[idx].astype(str)
        coord = "category" if "category" in sub.coords else None
        if coord is None:
            return None
    if coord in neural.coords and neural[coord].dims == ("presentation",):
        return np.asarray(neural[coord].values)[idx].astype(str)
    if coord in sub.coords and sub[coord].dims == ("stimulus",):
        lookup = dict(zip(np.asarray(sub["stimulus_id"].values).astype(str), np.asarray(sub[coord].values).astype(str)))
        return np.array([lookup[s] for s in stimulus_ids])
    raise BrainScoreError(f"stratification coord {coord!r} is neither a per-presentation coord of the neural data "
                          f"nor a stimulus coord of the Sheet; pass stratification_coord=None for random splits.")


def _check_strata(labels: np.ndarray, splits_test_fraction: float = 0.1) -> None:
    """Brain-Score's StratifiedShuffleSplit needs ≥ 2 stimuli per class and no more classes than test stimuli."""
    classes, counts = np.unique(labels, return_counts=True)
    n_test = math.ceil(splits_test_fraction * len(labels))
    if counts.min() < 2 or len(classes) > n_test:
        raise BrainScoreError(
            f"cannot stratify {len(labels)} stimuli on {len(classes)} classes (smallest has {counts.min()}; a 10 % "
            f"test split of {n_test} stimuli needs at most {n_test} classes of ≥ 2); pass stratification_coord=None "
            f"(--stratify none) or a coarser coord.")


def _reduce(model: xr.DataArray, n_components: int | None, max_units: int | None, seed: int) -> tuple[xr.DataArray, str]:
    """PCA to ``n_components`` or a random subset of ``max_units`` units (positions kept)."""
    n = model.sizes["neuroid"]
    if n_components is not None and max_units is not None:
        raise BrainScoreError("give n_components (PCA) or max_units (subsampling), not both.")
    if max_units is not None:
        if max_units < 1:
            raise BrainScoreError(f"max_units must be ≥ 1; got {max_units}.")
        if max_units >= n:
            return model, "none"
        keep = np.sort(np.random.default_rng(seed).choice(n, size=max_units, replace=False))
        return model.isel(neuroid=keep), f"random subset of {max_units} of {n} units (seed {seed})"
    if n_components is not None:
        from sklearn.decomposition import PCA

        k = min(int(n_components), *model.shape)
        if k < 1:
            raise BrainScoreError(f"n_components must be ≥ 1; got {n_components}.")
        comps = PCA(n_components=k, random_state=seed).fit_transform(np.asarray(model.values, dtype=np.float64))
        coords = {"stimulus_id": model["stimulus_id"], "neuroid_id": ("neuroid", [f"pc{i}" for i in range(k)])}
        return (xr.DataArray(comps.astype(np.float32), dims=model.dims, coords=coords, name="responses"),
                f"PCA: {k} components of {n} units over the scored stimuli")
    if n > SLOW_UNITS:
        warnings.warn(f"scoring {n} units: PLS takes about {100 * n / 25_000:.0f} s per metric on 2 idle CPU cores "
                      f"(several times that on a busy machine); n_components={model.sizes['presentation']} (PCA to the "
                      f"number of stimuli: the same pls / ridge / cka score) or max_units= make it fast.", stacklevel=3)
    return model, "none"


def score(sheet: Any, neural: Any, metric: str | list[str] = "pls", *, region: str | None = None,
          area: str | None = None, stratification_coord: str | None = "auto", n_components: int | None = None,
          max_units: int | None = None, splits: int = 10, ceiling: bool = True, shuffle_control: bool = True,
          seed: int = 0, venv: str | os.PathLike | None = None, workdir: str | os.PathLike | None = None,
          isolate: str | None = None, timeout: float | None = None) -> ScoreResult | dict[str, ScoreResult]:
    """Score a Sheet area against neural data with Brain-Score's metrics, offline, in the Brain-Score environment.

    Parameters
    ----------
    sheet : Sheet (xarray Dataset) or Sheet file
    neural : neural data (see :func:`cortexsim.brainscore.exchange.load_neural`): NetCDF / HDF5 / ``.npz`` path or
        DataArray, ``(presentation, neuroid)`` with ``stimulus_id``, ``neuroid_id`` and optionally ``repetition``
    metric : one of :data:`METRICS` or a list of them (one Brain-Score run for all)
    region : Brain-Score region of the neural data (V1, V2, V4, IT); default their ``region`` coord
    area : Sheet area to score (default: the area called like ``region``)
    stratification_coord : ``"auto"``, a coord name, or None (see module docstring)
    n_components, max_units : PCA or unit subsampling of the model responses (big Sheets)
    splits : cross-validation splits
    ceiling : compute the ceiling when the neural data have ≥ 2 repetitions
    shuffle_control : also score the model with its stimuli permuted (chance level)
    seed : seed of subsampling, PCA and the shuffle
    venv : Brain-Score environment (default :func:`cortexsim.brainscore.env.default_venv`)
    workdir : folder for the exchange files and the run log (default: a temporary folder, removed on success)
    isolate : network isolation of the run (``auto`` / ``require`` / ``off``)
    timeout : seconds before the Brain-Score run is stopped

    Returns
    -------
    ScoreResult, or a dict metric -> ScoreResult when ``metric`` is a list.

    Raises
    ------
    BrainScoreError
        Unknown metric / region / area, stimulus ids that do not match, neural data without
        neuroid coords, bad stratification.
    BrainScoreEnvError
        No (or a broken) Brain-Score environment; the message says what to run.
    """
    names = [metric] if isinstance(metric, str) else list(metric)
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise BrainScoreError(f"unknown metric {unknown or names}; choose from {', '.join(METRICS)}.")
    t0 = time.perf_counter()
    data = load_neural(neural)
    neural_region = None
    if "region" in data.coords:
        regions = np.unique(np.asarray(data["region"].values).astype(str))
        if len(regions) > 1:
            raise BrainScoreError(f"the neural data span regions {list(regions)}; score one at a time "
                                  f"(neural.where(neural.region == 'IT', drop=True)).")
        neural_region = str(regions[0])
    sub, area, region = select_area(sheet, region, area, neural_region)
    stimulus_ids = np.asarray(list(dict.fromkeys(data["stimulus_id"].values.tolist())))
    model = model_responses(sub, stimulus_ids)
    model, reduction = _reduce(model, n_components, max_units, seed)
    model = model.assign_coords(region=("neuroid", np.full(model.sizes["neuroid"], region)))
    labels = None
    if any(m in _CROSS_VALIDATED for m in names):
        labels = _stratification(stratification_coord, data, sub, stimulus_ids)
        if labels is not None:
            try:
                _check_strata(labels)
            except BrainScoreError:
                if stratification_coord != "auto":
                    raise
                labels = None  # auto: a coord too fine for stratified splits -> plain random splits
    if labels is not None:
        model = model.assign_coords(object_name=("presentation", labels))
        lookup = dict(zip(stimulus_ids, labels))
        data = data.assign_coords(object_name=("presentation", [lookup[s] for s in data["stimulus_id"].values]))
    keep = [c for c in ("stimulus_id", "repetition", "object_name", "neuroid_id") if c in data.coords]
    data = data.drop_vars([c for c in data.coords if c not in keep])
    # A second per-stimulus coord: with stimulus_id alone Brain-Score's assemblies (xarray 2022) collapse the
    # presentation MultiIndex into a plain index and lose the stimulus_id coord its metrics split on.
    number = {s: i for i, s in enumerate(stimulus_ids)}
    model = model.assign_coords(stimulus_num=("presentation", np.arange(len(stimulus_ids))))
    data = data.assign_coords(stimulus_num=("presentation", [number[s] for s in data["stimulus_id"].values]))
    data = data.assign_coords(region=("neuroid", np.full(data.sizes["neuroid"], region)))

    env = find_env(venv)
    work = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="cortexsim-brainscore-"))
    work.mkdir(parents=True, exist_ok=True)
    write_exchange(model, work / "model.nc")
    write_exchange(data, work / "neural.nc")
    request = {"model": str(work / "model.nc"), "neural": str(work / "neural.nc"), "metrics": names,
               "stratification_coord": "object_name" if labels is not None else None, "splits": int(splits),
               "ceiling": bool(ceiling), "shuffle_seed": seed if shuffle_control else None, "region": region}
    out = env.run("score", request, work, timeout=timeout, isolate=isolate)
    if workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - t0
    results = {}
    for name in names:
        rec = out["metrics"][name]
        shuffled = rec.get("shuffled") or {}
        results[name] = ScoreResult(
            metric=name, brainscore_id=rec["brainscore_id"], region=region, area=area, score=rec["score"],
            raw=rec["raw"], error=rec["error"], ceiling=rec["ceiling"], ceiling_error=rec["ceiling_error"],
            ceiling_rule=rec["ceiling_rule"], shuffled_raw=shuffled.get("raw"), shuffled_error=shuffled.get("error"),
            n_stimuli=out["n_stimuli"], n_units=out["n_units"], n_neuroids=out["n_neuroids"], reduction=reduction,
            seconds=rec["seconds"], total_seconds=round(seconds, 2))
    return results[names[0]] if isinstance(metric, str) else results
