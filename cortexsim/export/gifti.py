"""Per-unit maps → GIFTI: a surface of the sheet (``.surf.gii``) and its data (``.func.gii`` / ``.label.gii``).

Vertex i is unit i (in the map's unit order), at its position in mm (z = 0 for a
flat sheet), so nothing is resampled. Triangles: the Delaunay triangulation of a
flat sheet with every triangle that has an edge longer than ``max_edge_mm``
removed (they would bridge holes and concave borders); for 3-D layouts the
triangles of the units' convex hull (a sphere layout becomes a closed sphere;
units inside a solid 3-D layout are vertices without triangles). Data arrays are
float32 with intent ``NIFTI_INTENT_ESTIMATE`` and the map name in their ``Name``
metadata (what Connectome Workbench shows); label maps get a label table.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import MapError
from .files import require_suffix, split_suffix, write_bytes
from .inputs import collect_maps
from .labels import encode_labels

#: Default longest triangle edge, in units of the median edge length of the triangulation.
MAX_EDGE_FACTOR = 3.0


def sheet_mesh(positions: np.ndarray, max_edge_mm: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (n, 3) float32 in mm and triangles (m, 3) int32 of a sheet.

    Parameters
    ----------
    positions : ndarray (n, 2 | 3), mm
    max_edge_mm : float, optional
        Triangles with a longer edge are dropped. Default 3 × the median edge
        length of the triangulation (regular and jittered sheets stay whole;
        holes and concave borders wider than ~3 unit spacings open).
    """
    from scipy.spatial import ConvexHull, Delaunay, QhullError

    pos = np.asarray(positions, dtype=float)
    if len(pos) < 3:
        raise MapError(f"a surface needs at least 3 units; got {len(pos)}.")
    try:
        faces = Delaunay(pos).simplices if pos.shape[1] == 2 else ConvexHull(pos).simplices
    except QhullError as exc:
        raise MapError(f"the units span no surface (collinear or coplanar in 3-D?): {exc}".splitlines()[0]) from exc
    corners = pos[faces]  # (m, 3, d)
    lengths = np.linalg.norm(corners - np.roll(corners, 1, axis=1), axis=2)
    limit = MAX_EDGE_FACTOR * float(np.median(lengths)) if max_edge_mm is None else float(max_edge_mm)
    faces = faces[lengths.max(axis=1) <= limit]
    if pos.shape[1] == 2:  # counter-clockwise seen from +z, so normals point up
        a, b, c = (pos[faces[:, k]] for k in range(3))
        cross = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
        faces[cross < 0] = faces[cross < 0][:, [0, 2, 1]]
        pos = np.c_[pos, np.zeros(len(pos))]
    return pos.astype(np.float32), faces.astype(np.int32)


def _meta(**kv: Any):
    from nibabel.gifti import GiftiMetaData

    return GiftiMetaData({k: str(v) for k, v in kv.items() if v is not None})


def to_gifti(
    values: Any,
    surf_path: str | os.PathLike,
    func_path: str | os.PathLike | None = None,
    *,
    label_path: str | os.PathLike | None = None,
    max_edge_mm: float | None = None,
    area: str | None = None,
    names: list[str] | None = None,
) -> dict[str, Path]:
    """Write the sheet as a GIFTI surface and its maps as GIFTI data.

    Parameters
    ----------
    values : DataArray (unit,) / (category, unit), Dataset of per-unit maps, or list/dict of them
    surf_path : path ending in ``.surf.gii``
        Pointset (float32, mm) + triangles (int32); ``GeometricType`` ``Flat`` for flat sheets.
    func_path : path ending in ``.func.gii``, optional
        One float32 data array per numeric map, named in its metadata.
    label_path : path ending in ``.label.gii``, optional
        One int32 array per label map with the label table (default: next to
        ``func_path`` / ``surf_path`` as ``<stem>.label.gii``, when there are label maps).
    max_edge_mm : float, optional
        Longest triangle edge kept (default 3 × the median edge of the triangulation).
    area, names : as in :func:`cortexsim.export.to_nifti`.

    Returns
    -------
    dict with keys ``"surf"``, and ``"func"`` / ``"label"`` when written: the paths.
    """
    from nibabel import gifti

    require_suffix(surf_path, (".surf.gii",), "GIFTI surface")
    maps = collect_maps(values, area, names)
    cats = maps.categorical()
    coords, faces = sheet_mesh(maps.positions, max_edge_mm)
    flat = maps.ndim == 2
    xform = gifti.GiftiCoordSystem(dataspace=2, xformspace=2, xform=np.eye(4))  # aligned anatomical mm, as the NIfTI
    surf = gifti.GiftiImage(meta=_meta(software=f"cortexsim {__version__}", area=maps.area))
    surf.add_gifti_data_array(gifti.GiftiDataArray(
        coords, intent="NIFTI_INTENT_POINTSET", datatype="NIFTI_TYPE_FLOAT32", coordsys=xform,
        meta=_meta(AnatomicalStructurePrimary="Cortex", GeometricType="Flat" if flat else "Reconstruction")))
    surf.add_gifti_data_array(gifti.GiftiDataArray(faces, intent="NIFTI_INTENT_TRIANGLE", datatype="NIFTI_TYPE_INT32"))
    out: dict[str, Path] = {}
    numeric = [i for i, c in enumerate(cats) if not c]
    labelled = [i for i, c in enumerate(cats) if c]
    if numeric:
        if func_path is None:
            raise MapError(f"maps {[maps.names[i] for i in numeric]} need a func_path ending in .func.gii.")
        require_suffix(func_path, (".func.gii",), "GIFTI data")
        func = gifti.GiftiImage(meta=_meta(software=f"cortexsim {__version__}", area=maps.area))
        for i in numeric:
            v = np.asarray(maps.values[i], dtype=np.float32)
            if not np.isfinite(v).any():
                raise MapError(f"map {maps.names[i]!r} is NaN everywhere; there is nothing to export.")
            func.add_gifti_data_array(gifti.GiftiDataArray(
                v, intent="NIFTI_INTENT_ESTIMATE", datatype="NIFTI_TYPE_FLOAT32",
                meta=_meta(Name=maps.names[i], units=maps.attrs[i].get("units"), long_name=maps.attrs[i].get("long_name"))))
        out["func"] = write_bytes(func_path, func.to_xml())
    if labelled:
        if label_path is None:
            stem, _ = split_suffix(func_path if func_path is not None else surf_path)
            label_path = stem.with_name(stem.name + ".label.gii")
        require_suffix(label_path, (".label.gii",), "GIFTI label")
        if len(labelled) > 1:
            raise MapError(f"label maps {[maps.names[i] for i in labelled]}: a .label.gii holds one label table; "
                           f"export them one at a time.")
        i = labelled[0]
        codes, table = encode_labels(maps.values[i], maps.attrs[i])
        lab = gifti.GiftiImage(meta=_meta(software=f"cortexsim {__version__}", area=maps.area))
        for k, (name, rgba) in enumerate(zip(table.names, table.colours)):
            gl = gifti.GiftiLabel(key=k, red=rgba[0] / 255, green=rgba[1] / 255, blue=rgba[2] / 255, alpha=rgba[3] / 255)
            gl.label = name
            lab.labeltable.labels.append(gl)
        lab.add_gifti_data_array(gifti.GiftiDataArray(codes.astype(np.int32), intent="NIFTI_INTENT_LABEL",
                                                      datatype="NIFTI_TYPE_INT32", meta=_meta(Name=maps.names[i])))
        out["label"] = write_bytes(label_path, lab.to_xml())
    out["surf"] = write_bytes(surf_path, surf.to_xml())
    return out

