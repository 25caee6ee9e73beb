"""Analyses of a Sheet: selectivity, preference maps, clustering, graphs, smoothness, pinwheels, ...

Every analysis takes a Sheet (``xarray.Dataset``) or a result derived from one
and returns labelled xarray objects; per-unit results keep the unit coords
(area, layer, channel, row, col, x_mm, y_mm, unit_id) so they can be mapped
(``ds.cortex.map``) and exported.

>>> from cortexsim import analysis
>>> d = analysis.dprime(ds, by="domain", target="faces")          # DataArray (unit,)
>>> pref = analysis.preference_map(ds, by="domain", threshold=2.0)
>>> ci = analysis.clustering_index(pref, n_perm=20, seed=0)        # Dataset: index, observed, null
>>> G = analysis.neighbour_graph(ds, values=pref)                  # networkx.Graph
>>> ori = analysis.orientation_map(gratings_ds)                    # preferred orientation, CV, OSI

The spatial-statistics, representation and robustness analyses (smoothness,
Moran's I, pinwheels, patches, RSA, entropy, robustness) are imported lazily on
first use, so ``import cortexsim.analysis`` stays light (no torch).
"""
from __future__ import annotations

import importlib
import importlib.util
import warnings

from ._common import GroupMoments, group_moments
from .clustering import clustering_index, preference_codes, topography_index
from .figures import plot_clustering_null, plot_dprime_map, plot_orientation_map, plot_preference_map, save_figure
from .graphs import (
    component_sizes,
    grid_edges,
    neighbour_edges,
    neighbour_graph,
    preference_modularity,
    same_preference_subgraph,
    write_graphml,
)
from .preference import half_max_width, number_map, orientation_map, preference_from_selectivity, preference_map
from .selectivity import dprime, selectivity, tstat

#: Public names defined in the lazily imported modules: name -> module.
_LAZY: dict[str, str] = {
    "smoothness": "smoothness",
    "morans_i": "smoothness",
    "pinwheels": "pinwheels",
    "patches": "patches",
    "patches_by_category": "patches",
    "rdm": "representation",
    "compare_rdms": "representation",
    "entropy": "representation",
    "percentage_of_zeros": "representation",
    "expert_units": "representation",
    "tuning_curves": "representation",
    "weight_noise_robustness": "robustness",
    "input_noise_robustness": "robustness",
    "pruning_curve": "robustness",
}


def _import_light(module: str) -> None:
    """Import a light part-2 module now if it exists, binding its functions over the submodule attribute.

    ``smoothness``, ``pinwheels`` and ``patches`` are both module and function
    names: importing the submodule would bind the *module* to the package
    attribute, so the functions are bound explicitly after it.
    """
    if importlib.util.find_spec(f"{__name__}.{module}") is None:
        return  # not written yet: the name stays unavailable (see `available`)
    try:
        mod = importlib.import_module(f"{__name__}.{module}")
    except ImportError as exc:  # a half-finished module must not break the package
        warnings.warn(f"{__name__}.{module} could not be imported: {exc}", RuntimeWarning, stacklevel=2)
        return
    for name, where in _LAZY.items():
        if where == module and hasattr(mod, name):
            globals()[name] = getattr(mod, name)


for _module in ("smoothness", "pinwheels", "patches"):
    _import_light(_module)


def available(name: str) -> bool:
    """True when the analysis ``name`` can be used (its module is installed)."""
    if name in globals():
        return True
    module = _LAZY.get(name)
    return module is not None and importlib.util.find_spec(f"{__name__}.{module}") is not None


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if importlib.util.find_spec(f"{__name__}.{module}") is None:
        raise AttributeError(f"{__name__}.{name} is not available: module {__name__}.{module} is not installed.")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "GroupMoments",
    "available",
    "clustering_index",
    "component_sizes",
    "dprime",
    "grid_edges",
    "group_moments",
    "half_max_width",
    "neighbour_edges",
    "neighbour_graph",
    "number_map",
    "orientation_map",
    "plot_clustering_null",
    "plot_dprime_map",
    "plot_orientation_map",
    "plot_preference_map",
    "preference_codes",
    "preference_from_selectivity",
    "preference_map",
    "preference_modularity",
    "same_preference_subgraph",
    "save_figure",
    "selectivity",
    "topography_index",
    "tstat",
    "write_graphml",
    *_LAZY,
]
