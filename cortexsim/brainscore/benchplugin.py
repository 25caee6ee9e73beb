"""The tissue-correlation benchmark as Brain-Score plugin folders: :func:`write_tissue_benchmark`.

Writes, for a lab's own recording (sites with ``tissue_x`` / ``tissue_y`` in mm) and
the images it was recorded on:

* ``OUT/benchmarks/<folder>/``: ``__init__.py`` (``benchmark_registry['<id>']``),
  ``benchmark.py`` (records the region with ``look_at`` on ``stimuli/``, scores with
  the metric, ceils), ``benchmark.json`` (region, distance bins, ceiling),
  ``neural.nc`` (the recording, flat NetCDF), ``stimuli/`` (the images);
* ``OUT/metrics/<folder>/``: ``__init__.py`` (``metric_registry['<id>']``),
  ``metric.py`` and ``tissue_core.py`` — a verbatim copy of
  :mod:`cortexsim.brainscore.tissue_core`, so the plugin computes exactly what
  :func:`cortexsim.brainscore.tissue_correlation` does.

Drop both folders into a brainscore-vision checkout (or score locally with
:func:`score_benchmark`); the model must add ``tissue_x`` / ``tissue_y`` to its
activations, as the plugins of :func:`cortexsim.brainscore.write_plugin` do.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cortexsim.errors import BrainScoreError

from . import tissue_core as core
from .exchange import load_neural, write_exchange
from .plugin import _render, check_identifier, folder_name
from .tissue import distance_edges, neural_repetitions, site_positions


@dataclass(frozen=True)
class BenchmarkInfo:
    """Folders written by :func:`write_tissue_benchmark` and the benchmark's ceiling."""

    identifier: str
    benchmark: Path
    metric: Path
    region: str
    edges_mm: list[float]
    ceiling: float

    def __str__(self) -> str:
        return (f"wrote Brain-Score benchmark {self.identifier!r} ({self.region}, {len(self.edges_mm) - 1} bins to "
                f"{self.edges_mm[-1]:.2f} mm, ceiling {self.ceiling:.4f}):\n  {self.benchmark}\n  {self.metric}")


def write_tissue_benchmark(neural: Any, stimuli: Sequence[str | os.PathLike] | Mapping[str, str | os.PathLike],
                           identifier: str, out: str | os.PathLike, *, region: str | None = None, bins: Any = None,
                           n_bins: int = 10, max_pairs: int = core.MAX_PAIRS, min_pairs: int = core.MIN_PAIRS,
                           ceiling_splits: int = 10, seed: int = 0, time_bin: tuple[int, int] = (70, 170),
                           overwrite: bool = False) -> BenchmarkInfo:
    """Write benchmark + metric plugin folders scoring models on ``neural`` (see module docstring).

    Parameters
    ----------
    neural : recording with ``stimulus_id``, ``neuroid_id``, ``tissue_x`` / ``tissue_y`` (mm), optional
        ``repetition`` and ``region`` (any form :func:`cortexsim.brainscore.exchange.load_neural` reads)
    stimuli : image files (ids = file stems) or mapping stimulus_id -> file; every neural stimulus needs one
    identifier : benchmark (and metric) identifier, e.g. ``"mylab2025.IT-tissue"``
    out : folder receiving ``benchmarks/`` and ``metrics/``
    region : the recorded region (default: the data's ``region`` coord)
    bins, n_bins, max_pairs, min_pairs, ceiling_splits, seed : as in :func:`cortexsim.brainscore.tissue_correlation`
    time_bin : the recording window (ms) asked of the model
    overwrite : replace existing folders
    """
    from cortexsim import __version__

    from .exchange import REGIONS
    from .lookat import _stimuli

    check_identifier(identifier)
    data = load_neural(neural)
    positions = site_positions(data)
    if region is None and "region" in data.coords:
        found = np.unique(np.asarray(data["region"].values).astype(str))
        region = str(found[0]) if len(found) == 1 else None
    if region not in REGIONS:
        raise BrainScoreError(f"unknown region {region!r}: give region= one of {', '.join(REGIONS)} (the model "
                              f"region the recording stands for).")
    files = {s["stimulus_id"]: Path(s["path"]) for s in _stimuli(stimuli)}
    stimulus_ids = np.asarray(list(dict.fromkeys(data["stimulus_id"].values.tolist())))
    missing = [s for s in stimulus_ids if s not in files]
    if missing:
        raise BrainScoreError(f"{len(missing)} neural stimulus ids have no image, e.g. {missing[:3]}; the images' "
                              f"ids are {list(files)[:3]} (file stems, or pass a dict id -> path).")
    reps = neural_repetitions(data, stimulus_ids)
    data_c = core.correlations_by_distance(reps.mean(axis=0), positions, max_pairs, seed)
    edges = distance_edges(bins, data_c[0], n_bins)
    ceiling, ceiling_sd = core.split_half_ceiling(reps, positions, edges, ceiling_splits, seed, max_pairs, min_pairs)
    if not ceiling > 0:
        raise BrainScoreError(f"the recording's split-half ceiling is {ceiling}; its halves share no usable "
                              f"distance bin (more stimuli, sites or repetitions are needed).")

    name = folder_name(identifier)
    bench, metric = Path(out) / "benchmarks" / name, Path(out) / "metrics" / name
    for folder in (bench, metric):
        if folder.exists() and not overwrite:
            raise BrainScoreError(f"{folder} exists; pass overwrite=True (--overwrite) to replace it.")
    Path(out).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=out))  # same file system: os.replace is atomic
    try:
        sb, sm = staging / "benchmark", staging / "metric"
        (sb / "stimuli").mkdir(parents=True)
        sm.mkdir()
        names = {}
        for k, (sid, path) in enumerate((s, files[s]) for s in stimulus_ids):
            names[sid] = f"{k:05d}{path.suffix.lower()}"
            shutil.copyfile(path, sb / "stimuli" / names[sid])
        keep = [c for c in ("stimulus_id", "repetition", "neuroid_id", "region", "tissue_x", "tissue_y", "tissue_z")
                if c in data.coords]
        flat = data.drop_vars([c for c in data.coords if c not in keep])
        write_exchange(flat.assign_coords(stimulus_num=("presentation", np.searchsorted(
            np.sort(stimulus_ids), flat["stimulus_id"].values))), sb / "neural.nc")
        config = {"identifier": identifier, "region": region, "metric_folder": name, "edges_mm": edges.tolist(),
                  "ceiling": ceiling, "ceiling_sd": ceiling_sd, "max_pairs": int(max_pairs), "min_pairs": int(min_pairs),
                  "seed": int(seed), "time_bin": list(time_bin), "stimuli": names, "cortexsim_version": __version__}
        (sb / "benchmark.json").write_text(json.dumps(config, indent=1) + "\n")
        values = dict(identifier=identifier, identifier_repr=repr(identifier), cortexsim_version=__version__,
                      region=region, folder=name)
        (sb / "__init__.py").write_text(_render("bench_init.py.tmpl", **values))
        (sb / "benchmark.py").write_text(_render("benchmark.py.tmpl", **values))
        (sm / "__init__.py").write_text(_render("metric_init.py.tmpl", **values))
        (sm / "metric.py").write_text(_render("metric.py.tmpl", **values))
        shutil.copyfile(Path(core.__file__), sm / "tissue_core.py")
        for req in (sb, sm):
            (req / "requirements.txt").write_text("numpy\nscipy\nxarray\n")
        for src, dst in ((sb, bench), (sm, metric)):
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.exists():
                shutil.rmtree(dst)
            os.replace(src, dst)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return BenchmarkInfo(identifier, bench, metric, region, edges.tolist(), ceiling)


def score_benchmark(model_plugin: str | os.PathLike, benchmark: BenchmarkInfo | str | os.PathLike, *,
                    model_id: str | None = None, venv: str | os.PathLike | None = None,
                    workdir: str | os.PathLike | None = None, isolate: str | None = None,
                    timeout: float | None = None) -> dict[str, Any]:
    """Score a model plugin on a written tissue benchmark in the Brain-Score environment (all local).

    ``benchmark``: the :class:`BenchmarkInfo` or the benchmark folder (its metric folder is
    ``../../metrics/<same name>``). Returns ``{"score", "ceiling", "attrs", "seconds"}``.
    """
    from .env import find_env
    from .lookat import plugin_identifier

    bench = Path(benchmark.benchmark if isinstance(benchmark, BenchmarkInfo) else benchmark).resolve()
    config = json.loads((bench / "benchmark.json").read_text())
    metric = bench.parent.parent / "metrics" / config["metric_folder"]
    request = {"model_plugin": str(Path(model_plugin).resolve()),
               "model_id": model_id or plugin_identifier(model_plugin), "benchmark_plugin": str(bench),
               "benchmark_id": config["identifier"], "metric_plugin": str(metric), "metric_id": config["identifier"]}
    env = find_env(venv)
    work = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="cortexsim-bench-"))
    try:
        return env.run("benchmark", request, work, timeout=timeout, isolate=isolate)
    finally:
        if workdir is None:
            shutil.rmtree(work, ignore_errors=True)
