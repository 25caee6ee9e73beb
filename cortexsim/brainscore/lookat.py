"""Run a written model plugin inside the Brain-Score environment: :func:`look_at`.

The plugin is imported from its folder and its commitment built from Brain-Score's
``model_registry`` (no download, no benchmark data), then each committed region is
recorded on local image files, as Brain-Score's benchmarks would record it.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import xarray as xr

from cortexsim.errors import BrainScoreError

from .env import find_env
from .exchange import read_exchange


def plugin_identifier(folder: str | os.PathLike) -> str:
    """The model identifier of a plugin folder (from its ``region_layer_map/<id>.json``)."""
    maps = sorted((Path(folder) / "region_layer_map").glob("*.json"))
    if len(maps) != 1:
        raise BrainScoreError(f"{folder} is not a single-model plugin folder (region_layer_map/ holds "
                              f"{[m.name for m in maps]}); pass identifier=.")
    return maps[0].stem


def _stimuli(stimuli: Sequence[str | os.PathLike] | Mapping[str, str | os.PathLike]) -> list[dict[str, str]]:
    items = stimuli.items() if isinstance(stimuli, Mapping) else ((Path(p).stem, p) for p in stimuli)
    out = [{"stimulus_id": str(k), "path": str(Path(p).resolve())} for k, p in items]
    if not out:
        raise BrainScoreError("no stimuli: give image files (PNG/JPEG).")
    missing = [s["path"] for s in out if not Path(s["path"]).is_file()]
    if missing:
        raise BrainScoreError(f"{len(missing)} stimulus files do not exist, e.g. {missing[0]}.")
    if len({s["stimulus_id"] for s in out}) != len(out):
        raise BrainScoreError("stimulus ids repeat (file names without suffix); pass a dict id -> path.")
    return out


def look_at(plugin: str | os.PathLike, stimuli: Sequence[str | os.PathLike] | Mapping[str, str | os.PathLike], *,
            identifier: str | None = None, regions: Sequence[str] | None = None, run_plugin_tests: bool = False,
            venv: str | os.PathLike | None = None, workdir: str | os.PathLike | None = None,
            isolate: str | None = None, timeout: float | None = None) -> tuple[dict[str, xr.DataArray], dict[str, Any]]:
    """Build the plugin's ``ModelCommitment`` in the Brain-Score environment and record regions on images.

    Parameters
    ----------
    plugin : the plugin folder (``.../models/<folder>``)
    stimuli : image paths (ids = file stems) or a mapping stimulus_id -> path
    identifier : the model identifier (default: from ``region_layer_map/<id>.json``)
    regions : regions to record (default: every committed region)
    run_plugin_tests : also run the ``test_*`` functions of the plugin's ``test.py`` there
    venv, workdir, isolate, timeout : as in :func:`cortexsim.brainscore.score`

    Returns
    -------
    (activations, info): region -> ``(presentation, neuroid)`` DataArray with Brain-Score's coords
    (``stimulus_id``, ``neuroid_id``, ``layer``, ``channel``, ``channel_x``, ``channel_y``,
    ``tissue_x``, ``tissue_y`` ...); info: the region -> layer map, timings, test results.
    """
    folder = Path(plugin).resolve()
    if not (folder / "__init__.py").is_file():
        raise BrainScoreError(f"{folder} is not a plugin folder (no __init__.py); write one with "
                              f"`cortexsim brainscore plugin`.")
    identifier = identifier or plugin_identifier(folder)
    request = {"plugin": str(folder), "model_id": identifier, "stimuli": _stimuli(stimuli),
               "regions": list(regions) if regions else None, "run_tests": bool(run_plugin_tests)}
    env = find_env(venv)
    work = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="cortexsim-lookat-"))
    request["out_dir"] = str((work / "activations").resolve())
    try:
        info = env.run("look_at", request, work, timeout=timeout, isolate=isolate)
        acts = {region: read_exchange(rec["file"]) for region, rec in info["regions"].items()}
    finally:
        if workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return acts, json.loads(json.dumps(info))
