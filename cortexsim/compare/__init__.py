"""Compare model maps with brain maps: simulated fMRI, loading, alignment, statistics under spatial nulls.

>>> from cortexsim import compare
>>> vox = compare.voxelize(ds, voxel_mm=2.0, psf_fwhm_mm=3.5)          # stimulus × voxel Sheet
>>> target = compare.load_map("ffa_tmap.nii.gz")                       # NIfTI / GIFTI / NumPy
>>> table = compare.compare_maps(d_faces, target, align="patches")     # pandas DataFrame
>>> compare.plot_comparison(table, "comparison.png")                   # or cortexsim.plotting.plot_comparison(table, ax=...)

Submodules are imported on first use, so ``cortexsim --help`` stays fast.
"""
from __future__ import annotations

from .._lazy import lazy_package

_LAZY = {
    "voxelize": "voxelize",
    "load_map": "targets",
    "BrainMap": "targets",
    "Transform": "align",
    "fit_similarity": "align",
    "align_by_patches": "align",
    "align_by_correlation": "align",
    "surrogates": "nulls",
    "NULLS": "nulls",
    "p_value": "nulls",
    "threshold_patches": "stats",
    "dice_jaccard": "stats",
    "rsa_maps": "stats",
    "compare_maps": "maps",
    "pair_maps": "maps",
    "save_table": "maps",
    "plot_comparison": "figure",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_package(__name__, _LAZY, shadowed=("voxelize",))
