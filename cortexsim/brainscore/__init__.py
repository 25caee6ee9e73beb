"""Brain-Score for cortexsim models and Sheets (brainscore-vision 2.4.2, in an environment of its own).

>>> from cortexsim import brainscore as bs
>>> bs.setup_env()                                             # once: a separate venv with Brain-Score
>>> bs.score("sheet.h5", "neural.nc", metric="pls", region="IT")   # Brain-Score's metric, offline
>>> bs.write_plugin("runs/tdann", "my-tdann", "plugins")       # plugins/models/my_tdann/ for a submission
>>> bs.look_at("plugins/models/my_tdann", ["a.png", "b.png"])   # Brain-Score builds and records it, offline
>>> bs.tissue_correlation(sheet, neural)                        # correlation-vs-distance benchmark (no Brain-Score)
>>> bs.write_tissue_benchmark(neural, images, "lab.IT-tissue", "plugins")  # ... as Brain-Score plugin folders

brainscore-vision pins numpy < 2 and xarray < 2022.6, so it never enters
cortexsim's environment: :mod:`.env` creates and runs a separate one, data
travel through NetCDF / JSON files (:mod:`.exchange`), and :mod:`.runner` is the
script that environment executes. Nothing here reaches Brain-Score's S3
storage: region→layer maps are always explicit and every run is network-isolated.
Submodules are imported on first use.
"""
from __future__ import annotations

from .._lazy import lazy_package

_LAZY = {
    "BRAINSCORE_VERSION": "env",
    "REQUIREMENTS": "env",
    "BrainScoreEnv": "env",
    "default_venv": "env",
    "find_env": "env",
    "setup_env": "env",
    "network_isolation": "env",
    "load_neural": "exchange",
    "REGIONS": "exchange",
    "METRICS": "score",
    "ScoreResult": "score",
    "score": "score",
    "write_plugin": "plugin",
    "plugin_cortex": "plugin",
    "PluginInfo": "plugin",
    "look_at": "lookat",
    "tissue_correlation": "tissue",
    "TissueResult": "tissue",
    "write_tissue_benchmark": "benchplugin",
    "score_benchmark": "benchplugin",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_package(__name__, _LAZY)
