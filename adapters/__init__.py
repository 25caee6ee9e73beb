"""Topographic training methods behind one interface: this folder (``adapters/``) is the package ``cortexsim.adapters``.

Import it as ``from cortexsim import adapters`` (``import adapters`` does not exist:
pyproject's ``package-dir`` installs the folder under ``cortexsim``).

>>> from cortexsim import adapters
>>> adapters.methods()
['as', 'baseline', 'channel', 'reset', 'tdann', 'topoloss', 'ws']
>>> net = adapters.get_method("channel").build(arch="resnet18", num_classes=10, layout="grid2d", lam=1.0)
"""
from __future__ import annotations

import importlib

from cortexsim._lazy import lazy_package

_FROM = {**{name: "base" for name in ("AdapterError", "DatasetNotFoundError", "MethodSpec", "TopographicNet",
                                        "get_method", "methods", "register")},
         "Trainer": "trainer", "TrainConfig": "train_config", "load_trained": "run_folder", "read_log": "run_folder",
         "build_net": "run_folder"}
__all__ = list(_FROM)
# Imported on first use: .base pulls in torch, and `cortexsim --help` must not.
__getattr__, __dir__ = lazy_package(__name__, _FROM)

# One module per method; each calls `register(...)` at import.
_METHOD_MODULES = ("baseline", "tdann", "channel", "similarity", "reset", "topoloss")
_loaded = False


def _load_methods() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in _METHOD_MODULES:
        try:
            importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{mod}":  # a real missing dependency, not an unwritten module
                raise
