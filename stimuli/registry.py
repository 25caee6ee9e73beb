"""Look up stimulus sets by name: ``get("floc_offline", image_size=64)``.

The sets' modules import torch; they are imported only when a set is built, so that
listing the names (``cortexsim stimuli --help``) stays fast.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from cortexsim.errors import StimulusError

__all__ = ["REGISTRY", "NEEDS_PATH", "DESCRIPTIONS", "get", "names", "describe"]

#: name -> (submodule, function, fixed keyword options, one-line description)
_SETS: dict[str, tuple[str, str, dict[str, Any], str]] = {
    "gratings": ("gratings", "gratings", {}, "sinusoidal gratings, TDANN grid black-and-white (320)"),
    "tdann_gratings": ("gratings", "tdann_gratings", {}, "TDANN's 8 orientations × 8 SFs × 5 phases × bw/colour (640)"),
    "floc": ("floc", "floc", {}, "fLoc category localiser from a folder PATH/<domain>/<category>/*.png"),
    "floc_offline": ("floc", "floc_offline", {}, "fLoc-like faces / characters / objects / places from installed data"),
    "numbers": ("numbers", "digits", {"source": "render"}, "digits 0-9 rendered from installed fonts"),
    "digits": ("numbers", "digits", {"source": "load_digits"}, "scikit-learn's handwritten digits 0-9"),
    "cifar10": ("datasets", "cifar10", {}, "CIFAR-10 from a local folder (python or binary batches)"),
    "cifar100": ("datasets", "cifar100", {}, "CIFAR-100 from a local folder, with Reset's macro classes"),
    "imagefolder": ("datasets", "imagefolder", {}, "ImageNet-style folder PATH/<class>/<image>"),
}


def _builder(module: str, func: str, fixed: dict[str, Any]) -> Callable[..., Any]:
    def build(*args: Any, **kwargs: Any) -> Any:
        fn = getattr(importlib.import_module(f"{__package__}.{module}"), func)
        return fn(*args, **{**fixed, **kwargs})

    build.__name__ = build.__qualname__ = func
    build.__doc__ = f"Build ``{module}.{func}``" + (f" with {fixed}" if fixed else "") + " (imported on first use)."
    return build


#: name -> callable building the set (its module is imported on the first call)
REGISTRY: dict[str, Callable[..., Any]] = {name: _builder(m, f, kw) for name, (m, f, kw, _) in _SETS.items()}
#: name -> one-line description
DESCRIPTIONS: dict[str, str] = {name: spec[3] for name, spec in _SETS.items()}
#: sets that read a user folder (first positional argument / ``path=``)
NEEDS_PATH: frozenset[str] = frozenset({"floc", "cifar10", "cifar100", "imagefolder"})


def names() -> list[str]:
    """Registered set names."""
    return sorted(REGISTRY)


def describe() -> str:
    """One line per set: name, description, and whether it needs ``--path``."""
    return "\n".join(f"  {n:<15} {DESCRIPTIONS[n]}" + (" [needs --path]" if n in NEEDS_PATH else "")
                     for n in names())


def get(name: str, path: str | None = None, **kwargs: Any):
    """Build the stimulus set called ``name`` (see :data:`REGISTRY`) with keyword options.

    ``path`` is required by the folder-backed sets (:data:`NEEDS_PATH`) and refused by the others.
    """
    key = name.lower().replace("-", "_")
    if key not in REGISTRY:
        raise StimulusError(f"unknown stimulus set {name!r}; available: {names()}")
    if key in NEEDS_PATH:
        if path is None:
            raise StimulusError(f"stimulus set {name!r} reads a user folder: pass path=FOLDER (CLI: --path FOLDER)")
        return REGISTRY[key](path, **kwargs)
    if path is not None:
        raise StimulusError(f"stimulus set {name!r} is generated, it takes no path (got {path!r})")
    return REGISTRY[key](**kwargs)
