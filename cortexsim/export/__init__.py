"""Export per-unit maps to the tools neuroscientists use: NIfTI volumes, GIFTI surfaces, label tables.

>>> from cortexsim import export
>>> export.to_nifti(d, "faces_dprime.nii.gz", voxel_mm=1.0)                # + faces_dprime.json
>>> export.to_nifti(pref, "preference.nii.gz")                              # labels + JSON + _LUT.txt
>>> export.to_gifti(d, "IT.surf.gii", "faces_dprime.func.gii")
>>> export.render_nifti("faces_dprime.nii.gz")                              # PNG drawn by nilearn

Figures of the files are drawn in :mod:`cortexsim.plotting` (``plot_nifti``, ``plot_gifti``;
``render_nifti`` / ``render_gifti`` are re-exported here).

Every map keeps the unit coords of the Sheet (``x_mm``, ``y_mm`` [, ``z_mm``]); the
NIfTI grid is :class:`cortexsim.grid.Grid`, the same raster as ``ds.cortex.map``.
Submodules are imported on first use, so ``cortexsim --help`` stays fast.
"""
from __future__ import annotations

from .._lazy import lazy_package

_LAZY = {
    "to_nifti": "nifti",
    "nifti_image": "nifti",
    "to_gifti": "gifti",
    "sheet_mesh": "gifti",
    "encode_labels": "labels",
    "LabelTable": "labels",
    "write_lut": "labels",
    "read_lut": "labels",
    "render_nifti": "render",  # cortexsim.plotting.export, through the old module
    "render_gifti": "render",
    "collect_maps": "inputs",
    "UnitMaps": "inputs",
    "load_unit_maps": "sources",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_package(__name__, _LAZY)
