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
>>> rep = analysis.run(ds, what=["selectivity", "preference", "clustering"], n_perm=50)
>>> rep["IT", "clustering"]; rep.save("results/")                  # what `cortexsim analyze` writes

Figures are in :mod:`cortexsim.plotting` (``analysis.plot_*`` are deprecated aliases).

The representation and robustness analyses (RSA, entropy, PoZ, expert units,
tuning curves, weight/input noise, pruning) are imported on first use, so
``import cortexsim.analysis`` stays light (no torch).
"""
from __future__ import annotations

from .._lazy import lazy_package

#: Where every public name lives; all are imported on first use, so ``import cortexsim.analysis``
#: (and ``cortexsim --help``) loads neither matplotlib, networkx, scipy.stats nor torch.
_MODULES: dict[str, tuple[str, ...]] = {
    '_common': ('GroupMoments', 'group_moments',),
    'clustering': ('clustering_index', 'preference_codes', 'topography_index',),
    'figures': ('plot_clustering_null', 'plot_dprime_map', 'plot_orientation_map', 'plot_patches', 'plot_preference_map', 'plot_rdm', 'plot_robustness', 'plot_smoothness', 'plot_tuning_curves', 'plot_unit_map', 'save_figure',),
    'graphs': ('component_sizes', 'grid_edges', 'neighbour_edges', 'neighbour_graph', 'preference_modularity', 'same_preference_subgraph', 'write_graphml',),
    'preference': ('class_mean_dprime', 'half_max_width', 'number_map', 'orientation_map', 'preference_from_selectivity', 'preference_map',),
    'selectivity': ('dprime', 'selectivity', 'tstat',),
    'patches': ('patches', 'patches_by_category',),
    'pinwheels': ('pinwheels',),
    'smoothness': ('morans_i', 'smoothness',),
    'report': ('Report', 'run',),
    'registry': ('analysis_names', 'register_analysis',),
}

#: Names imported on first use (their modules pull in torch): name -> module.
_LAZY: dict[str, str] = {
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


def available(name: str) -> bool:
    """True when ``name`` is an analysis of this package."""
    return name in _LAZY


# Function names shadow their submodules (``analysis.smoothness`` is the function).
_LAZY.update({name: module for module, names in _MODULES.items() for name in names})
__getattr__, _dir = lazy_package(__name__, _LAZY, shadowed=("patches", "pinwheels", "smoothness"))


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "GroupMoments",
    "Report",
    "analysis_names",
    "register_analysis",
    "run",
    "available",
    "class_mean_dprime",
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
    "plot_patches",
    "plot_preference_map",
    "plot_rdm",
    "plot_robustness",
    "plot_smoothness",
    "plot_tuning_curves",
    "plot_unit_map",
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
    "morans_i",
    "patches",
    "patches_by_category",
    "pinwheels",
    "smoothness",
    *_LAZY,
]
