"""Per-unit maps → NIfTI-1 volumes on a regular mm grid (nibabel).

The grid is :class:`cortexsim.grid.Grid` — the same pixel centres and affine as
``ds.cortex.map`` and every other raster in cortexsim. NIfTI axis i is x, j is y,
k is z; a flat sheet becomes a single slice (nx, ny, 1) at z = 0 (nilearn's
plotting rejects 2-D images), a 3-D layout a true (nx, ny, nz) volume. sform
and qform hold the same affine with code 2 (aligned anatomical), spatial units
are mm, voxels off the sheet are NaN (labels: 0), ``descrip`` names the map and
the area. Several maps make one 4-D file whose JSON sidecar names the volumes.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import MapError, ParameterTypeError
from ..grid import Grid, resample, unit_spacing
from .files import companion, require_suffix, write_bytes, write_json
from .inputs import UnitMaps, collect_maps
from .labels import LabelTable, encode_labels, write_lut

NIFTI_SUFFIXES = (".nii.gz", ".nii")
#: NIfTI transform code written to sform and qform: 2 = aligned anatomical (a scanner-independent mm space).
XFORM_CODE = 2


def _to_index_order(flat: np.ndarray, grid: Grid) -> np.ndarray:
    """(size, m) values in image (C) order → (nx, ny, nz, m) in NIfTI index order."""
    m = flat.shape[1]
    img = flat.reshape(grid.array_shape + (m,))  # (ny, nx, m) or (nz, ny, nx, m)
    img = np.moveaxis(img, list(range(grid.ndim)), list(reversed(range(grid.ndim))))  # (nx, ny[, nz], m)
    if grid.ndim == 2:
        img = img[:, :, None, :]
    return img


#: The keywords of :func:`to_nifti` that shape the volume (also taken by :func:`nifti_image`).
VOLUME_KEYWORDS: tuple[str, ...] = ("voxel_mm", "method", "fwhm_mm", "mask", "mask_distance_mm", "origin_mm")


def nifti_image(values: Any, *, area: str | None = None, names: list[str] | None = None,
                **volume: Any) -> tuple[Any, dict[str, Any], LabelTable | None]:
    """Build (without writing) the NIfTI image of one or several maps.

    ``values``, ``area``, ``names`` and the volume keywords (:data:`VOLUME_KEYWORDS`: ``voxel_mm``,
    ``method``, ``fwhm_mm``, ``mask``, ``mask_distance_mm``, ``origin_mm``) as in :func:`to_nifti`.
    Returns ``(nibabel.Nifti1Image, sidecar dict, label table or None)``.
    """
    unknown = sorted(set(volume) - set(VOLUME_KEYWORDS))
    if unknown:
        raise ParameterTypeError(f"nifti_image got unknown keyword(s) {unknown}; it takes area, names and "
                                 f"{', '.join(VOLUME_KEYWORDS)} (as to_nifti).")
    maps = values if isinstance(values, UnitMaps) else collect_maps(values, area, names)
    return _image(maps, **volume)


def _image(maps: UnitMaps, voxel_mm: float | None = None, method: str = "nearest", fwhm_mm: float | None = None,
           mask: Any = "distance", mask_distance_mm: float | None = None, origin_mm: Any = None
           ) -> tuple[Any, dict[str, Any], LabelTable | None]:
    import nibabel as nib

    cats = maps.categorical()
    table: LabelTable | None = None
    if any(cats) and (len(maps.names) > 1):
        raise MapError(
            f"maps {[n for n, c in zip(maps.names, cats) if c]} hold labels; a label volume holds one map. "
            f"Export label maps one at a time (or pass split=True)."
        )
    if any(cats):
        if method not in ("nearest", "mean"):
            raise MapError(f"map {maps.names[0]!r} holds labels; interpolating labels ({method!r}) makes no sense. "
                           f"Use method='nearest'.")
        codes, table = encode_labels(maps.values[0], maps.attrs[0])
        data = codes[:, None].astype(float)
        method = "nearest"
    else:
        data = maps.numeric()
        bad = [n for n, col in zip(maps.names, data.T) if not np.isfinite(col).any()]
        if bad:
            raise MapError(f"map {bad[0]!r} is NaN everywhere; there is nothing to export (check the analysis that made it).")
    voxel = unit_spacing(maps.positions) if voxel_mm is None else float(voxel_mm)
    if not (np.isfinite(voxel) and voxel > 0):
        raise MapError(f"voxel_mm must be a positive number of mm; got {voxel_mm}.")
    try:
        grid = Grid.covering(maps.positions, voxel, origin_mm)
    except ValueError as exc:
        raise MapError(str(exc)) from exc
    flat = resample(data, maps.positions, grid, method, fwhm_mm=fwhm_mm, mask=mask, mask_distance_mm=mask_distance_mm)
    vol = _to_index_order(flat, grid)
    if table is not None:
        vol = np.nan_to_num(vol, nan=0.0).astype(np.int16 if len(table.names) < 32_000 else np.int32)
    else:
        vol = vol.astype(np.float32)
    if vol.shape[-1] == 1:
        vol = vol[..., 0]
    affine = grid.affine
    img = nib.Nifti1Image(vol, affine)
    hdr = img.header
    img.set_sform(affine, code=XFORM_CODE)
    img.set_qform(affine, code=XFORM_CODE)
    hdr.set_xyzt_units(xyz="mm", t="unknown")
    where = f" area {maps.area}" if maps.area else ""
    hdr["descrip"] = f"cortexsim {', '.join(maps.names)}{where}"[:79].encode("ascii", "replace")
    hdr["aux_file"] = f"cortexsim {__version__}"[:23].encode()
    if table is not None:
        hdr.set_intent("label")
    else:
        hdr.set_intent("estimate", name=maps.names[0][:15] if len(maps.names) == 1 else "")
        finite = vol[np.isfinite(vol)]
        if finite.size:
            hdr["cal_min"], hdr["cal_max"] = float(finite.min()), float(finite.max())
    sidecar: dict[str, Any] = {
        "volumes": list(maps.names),
        "area": maps.area,
        "units": [a.get("units", "") for a in maps.attrs],
        "long_name": [a.get("long_name", "") for a in maps.attrs],
        "voxel_mm": voxel,
        "method": method,
        "fwhm_mm": (fwhm_mm if fwhm_mm is not None else voxel) if method == "gaussian" else None,
        "mask": mask if isinstance(mask, str) or mask is None else "array",
        "layout_dims": maps.ndim,
        "shape": list(vol.shape),
        "affine": affine.tolist(),
        "axes": "i = x_mm, j = y_mm, k = z_mm (flat sheets: one slice at z = 0)",
        "n_units": int(len(maps.positions)),
        "software": f"cortexsim {__version__}",
    }
    if table is not None:
        sidecar["labels"] = table.to_json()
    return img, sidecar, table


def to_nifti(
    values: Any,
    path: str | os.PathLike,
    *,
    voxel_mm: float | None = None,
    method: str = "nearest",
    fwhm_mm: float | None = None,
    mask: Any = "distance",
    mask_distance_mm: float | None = None,
    origin_mm: Any = None,
    area: str | None = None,
    names: list[str] | None = None,
    split: bool = False,
) -> Path | list[Path]:
    """Resample per-unit maps onto a regular mm grid and write a NIfTI-1 file.

    Parameters
    ----------
    values : DataArray (unit,) / (category, unit), Dataset of per-unit maps, or list/dict of them
        Maps carrying the unit coords x_mm, y_mm [, z_mm]. Several maps → one 4-D
        file (volumes in order, named in the sidecar); a label map (str values, e.g.
        ``analysis.preference_map``) → an integer label volume + label table.
    path : path-like ending in ``.nii.gz`` or ``.nii``
    voxel_mm : float, optional
        Voxel edge (mm). Default: the unit spacing (:func:`cortexsim.grid.unit_spacing`:
        the median nearest-neighbour distance, or the density spacing sqrt(area / n)
        of a flat sheet when that is larger, as on retinotopic sheets).
    method : {"nearest", "linear", "gaussian", "mean"}
        ``nearest`` (default): a voxel holding units takes the one nearest its centre
        (so the voxel holding a unit alone holds that unit's value), an empty voxel on
        the sheet the nearest unit; labels stay labels. ``linear``:
        barycentric interpolation on the units' Delaunay triangulation; ``gaussian``:
        Gaussian-weighted mean of the units around the centre (FWHM ``fwhm_mm``,
        default ``voxel_mm``); ``mean``: average of the units inside the voxel.
    fwhm_mm : float, optional
        Kernel width of ``method="gaussian"``.
    mask : {"distance", "hull", None}
        Voxels off the sheet are NaN: ``"distance"`` (default) keeps voxels whose
        centre lies within √d/2 · max(voxel, s) + s of a unit, s the unit spacing
        (every voxel holding a unit is kept; holes a few spacings wide stay
        empty); ``"hull"`` keeps the convex hull of the units; ``None`` keeps every
        voxel of the bounding box.
    mask_distance_mm : float, optional
        Override the distance of ``mask="distance"``.
    origin_mm : (x, y[, z]), optional
        A voxel centre (default: the smallest unit coordinates).
    area : str, optional
        The area to export when the maps hold several.
    names : list of str, optional
        Variables of a Dataset to export (default: all per-unit variables).
    split : bool
        Write one file per map (``<stem>_<name>.nii.gz``) instead of a 4-D file.

    Returns
    -------
    Path of the NIfTI file (a list of paths with ``split=True``). Next to each file:
    ``<stem>.json`` (volume names, area, units, voxel size, method, affine, labels)
    and for label maps ``<stem>_LUT.txt`` (FreeSurfer colour LUT). Every file is
    written atomically.

    Raises
    ------
    MapError
        bad suffix, an all-NaN map, a single unit, labels mixed with quantities,
        interpolated labels, mixed areas.
    """
    suffix = require_suffix(path, NIFTI_SUFFIXES, "NIfTI")
    maps = collect_maps(values, area, names)
    kw = dict(voxel_mm=voxel_mm, method=method, fwhm_mm=fwhm_mm, mask=mask, mask_distance_mm=mask_distance_mm,
              origin_mm=origin_mm)
    if split and len(maps.names) > 1:
        stem = companion(path, "")
        return [_write(maps.subset([i]), stem.with_name(f"{stem.name}_{n}{suffix}"), suffix, kw)
                for i, n in enumerate(maps.names)]
    return _write(maps, Path(path), suffix, kw)


def _write(maps: UnitMaps, path: Path, suffix: str, kw: dict[str, Any]) -> Path:
    img, sidecar, table = _image(maps, **kw)
    if table is not None:
        lut = write_lut(companion(path, "_LUT.txt"), table)
        sidecar["lut"] = lut.name
    write_json(companion(path, ".json"), sidecar)
    return write_bytes(path, img.to_bytes(), gz=suffix == ".nii.gz")
