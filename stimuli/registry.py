"""Look up stimulus sets by name: ``get("floc_offline", image_size=64)``."""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from cortexsim.errors import StimulusError

from .base import StimulusSet
from .datasets import cifar10, cifar100, imagefolder
from .floc import floc, floc_offline
from .gratings import gratings, tdann_gratings
from .numbers import digits

__all__ = ["REGISTRY", "NEEDS_PATH", "get", "names"]

REGISTRY: dict[str, Callable[..., StimulusSet]] = {
    "gratings": gratings,
    "tdann_gratings": tdann_gratings,
    "floc": floc,
    "floc_offline": floc_offline,
    "numbers": partial(digits, source="render"),
    "digits": partial(digits, source="load_digits"),
    "cifar10": cifar10,
    "cifar100": cifar100,
    "imagefolder": imagefolder,
}
#: sets that read a user folder (first positional argument / ``path=``)
NEEDS_PATH: frozenset[str] = frozenset({"floc", "cifar10", "cifar100", "imagefolder"})


def names() -> list[str]:
    """Registered set names."""
    return sorted(REGISTRY)


def get(name: str, path: str | None = None, **kwargs: Any) -> StimulusSet:
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
