"""``cortexsim.plotting``: figures of Sheets and analysis results (the only place matplotlib is imported).

Every ``plot_*`` takes the result as its first argument, draws into ``ax=`` (an Axes, or one per
area for multi-area maps) or ``figure=`` (new Axes in that Figure) or a new figure, returns its
Axes, and writes files only when given ``output_file=`` (a path, or several: one per format)::

    >>> import matplotlib.pyplot as plt
    >>> from cortexsim import analysis, plotting
    >>> fig, (a, b) = plt.subplots(1, 2, figsize=(9, 4))
    >>> plotting.plot_preference_map(analysis.preference_map(it, by="domain"), ax=a)
    >>> plotting.plot_clustering_null(analysis.clustering_index(pref, n_perm=50), ax=b)
    >>> fig.savefig("it.png")
    >>> plotting.plot_dprime_map(d, output_file=["d.png", "d.svg"])   # no pyplot figure is left open

Functions are imported on first use, so ``import cortexsim.plotting`` does not load matplotlib.
"""
from __future__ import annotations

from .._lazy import lazy_package

_LAZY: dict[str, str] = {
    **{name: "maps" for name in ("plot_preference_map", "plot_dprime_map", "plot_orientation_map", "plot_unit_map",
                                 "plot_patches")},
    **{name: "curves" for name in ("plot_clustering_null", "plot_smoothness", "plot_rdm", "plot_tuning_curves",
                                   "plot_robustness")},
    **{name: "_base" for name in ("save_figure", "robust_limits")},
    "plot_curves": "training",
    **{name: "export" for name in ("plot_nifti", "plot_gifti", "render_nifti", "render_gifti")},
    "plot_comparison": "compare",
}
__getattr__, __dir__ = lazy_package(__name__, _LAZY)
__all__ = sorted(_LAZY)
