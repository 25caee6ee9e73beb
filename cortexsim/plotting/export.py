"""Figures of exported files, drawn by nilearn, so the user sees what a NIfTI / GIFTI file holds.

:func:`plot_nifti` and :func:`plot_gifti` follow the ``cortexsim.plotting`` conventions (``ax=`` /
``figure=``, return the panels' nilearn displays, write only with ``output_file=``);
:func:`render_nifti` / :func:`render_gifti` (also ``cortexsim.export.render_*``) write a PNG next to
the file and return its path, as ``cortexsim export --png`` does.

Pitfalls of nilearn 0.14 handled here (and worth knowing when plotting the files yourself):

* ``plot_stat_map`` defaults to an MNI brain as background: pass ``bg_img=None``
  and cut the sheet's own slice (``display_mode="z", cut_coords=[0]`` for a flat sheet);
* nilearn's plotting replaces NaN by 0 *inside the image object it is given*:
  we pass a copy, so the loaded image keeps its NaN (off-sheet) voxels; a tiny
  ``threshold`` then leaves those voxels transparent instead of painting them as 0;
* a 2-D NIfTI loads but ``plot_img`` rejects it — cortexsim writes flat sheets as
  (nx, ny, 1) volumes;
* a flat GIFTI surface (z = 0) is seen from above with ``view=(90, 270)``
  (x to the right, y up).
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..export.files import companion
from ._base import OutputFile, axes_for, new_figure, save_atomic

#: Colour map of continuous maps (diverging, white at 0) — as cortexsim's d′ figures.
CMAP = "RdBu_r"
FLAT_VIEW = (90.0, 270.0)


def _sidecar(path: Path) -> dict[str, Any]:
    side = companion(path, ".json")
    if side.exists():
        try:
            return json.loads(side.read_text())
        except ValueError:
            return {}
    return {}


def _label_cmap(table: dict[str, Any]):
    from matplotlib.colors import ListedColormap

    keys = sorted(int(k) for k in table)
    colours = [np.asarray(table[str(k)]["rgba"][:3]) / 255 for k in keys if k > 0]
    return ListedColormap(colours), [table[str(k)]["name"] for k in keys if k > 0]


def _limit(data: np.ndarray) -> float:
    finite = np.abs(data[np.isfinite(data)])
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


def _panels(n: int, cols: int, size: tuple[float, float], extra_h: float, *, ax: Any, figure: Any,
            output_file: OutputFile, projection: str | None, func: str) -> list[Any]:
    """``n`` Axes in a grid of ``cols`` columns: ``ax`` (one per panel), new ones in ``figure``, or a new figure."""
    if ax is not None:
        return axes_for(n, ax=ax, func=func)
    rows = int(np.ceil(n / cols))
    fig = figure if figure is not None else new_figure((size[0] * cols, size[1] * rows + extra_h), output_file)
    return [fig.add_subplot(rows, cols, i + 1, projection=projection) for i in range(n)]


def _finish(fig: Any, displays: list[Any], legend: tuple[Any, list[str]] | None, title: str,
            output_file: OutputFile, dpi: int) -> np.ndarray:
    """Legend of the labels (if any), the title, the saved file(s); returns the displays."""
    if legend is not None:
        from matplotlib.patches import Patch

        cmap, names = legend
        handles = [Patch(facecolor=cmap(i), edgecolor="0.5", label=n) for i, n in enumerate(names)]
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    if output_file is not None:
        save_atomic(fig, output_file, dpi=dpi)
    return np.asarray(displays + [None], dtype=object)[:-1]  # an object array even of one display


def plot_nifti(img: Any, output_file: OutputFile = None, *, title: str | None = None, max_volumes: int = 12,
               ax: Any = None, figure: Any = None, dpi: int = 110) -> np.ndarray:
    """Draw every volume of a NIfTI image (a file written by ``to_nifti``, any NIfTI, or a Nifti1Image).

    Parameters
    ----------
    img : path or ``nibabel.Nifti1Image``
        Shape (nx, ny, nz[, n_volumes]); a path's JSON sidecar gives volume names, the area and the
        colours of a label volume. An image in memory is not changed (nilearn gets a copy).
    output_file : path(s) to write (format from the suffix), each atomically
    title : figure title (default: file name, voxel size and shape)
    max_volumes : draw at most this many volumes
    ax, figure : one Axes per volume drawn, or a Figure to add them to (default: a new figure)

    Flat sheets (nz = 1) show their single slice, three volumes per row; 3-D volumes up to five
    z slices each. Returns the nilearn displays, one per volume (a NumPy object array).
    """
    import nibabel as nib
    from nilearn import image, plotting

    if isinstance(img, nib.Nifti1Image):
        side, name = {}, "image"
    else:
        path = Path(img)
        img, side, name = nib.load(path), _sidecar(path), path.name
    data = np.asarray(img.dataobj)
    n_vol = data.shape[3] if data.ndim == 4 else 1
    names = side.get("volumes") or [f"volume {i}" for i in range(n_vol)]
    n_show = min(n_vol, max_volumes)
    labels = side.get("labels")
    nz = data.shape[2] if data.ndim >= 3 else 1
    z = (img.affine @ np.c_[np.zeros((nz, 2)), np.arange(nz), np.ones(nz)].T)[2]
    cuts = [float(z[0])] if nz == 1 else [float(v) for v in z[np.linspace(0, nz - 1, min(nz, 5)).round().astype(int)]]
    axes = _panels(n_show, min(n_show, 3 if nz == 1 else 1), (4.6 if nz == 1 else 3.0 * len(cuts), 4.0),
                   0.6 if labels else 0.0, ax=ax, figure=figure, output_file=output_file, projection=None,
                   func="plot_nifti")
    fig = axes[0].figure
    legend, displays = None, []
    for i, panel in enumerate(axes):
        vol = image.index_img(img, i) if data.ndim == 4 else img
        # nilearn sets NaN to 0 in the image it gets: hand it a copy, keep the caller's NaN.
        copy = nib.Nifti1Image(np.asanyarray(vol.dataobj).astype(np.float32), vol.affine, vol.header.copy())
        head = f"{names[i] if i < len(names) else i}{' — ' + str(side['area']) if side.get('area') else ''}"
        kw: dict[str, Any] = dict(bg_img=None, display_mode="z", cut_coords=cuts, axes=panel, figure=fig,
                                  annotate=nz > 1, draw_cross=False, black_bg=False, title=head)
        if labels:
            cmap, label_names = _label_cmap(labels)
            legend = (cmap, label_names)
            displays.append(plotting.plot_roi(copy, cmap=cmap, vmin=0.5, vmax=len(label_names) + 0.5,
                                              colorbar=False, **kw))
        else:
            lim = _limit(np.asarray(copy.dataobj))
            with warnings.catch_warnings():  # its NaN are the voxels off the sheet: expected
                warnings.filterwarnings("ignore", message="Non-finite values detected")
                displays.append(plotting.plot_stat_map(copy, cmap=CMAP, vmax=lim, threshold=lim * 1e-9,
                                                       colorbar=True, symmetric_cbar=True, **kw))
    head = title or (f"{name}: {side.get('voxel_mm', img.header.get_zooms()[0]):.3g} mm voxels, "
                     f"{' × '.join(map(str, data.shape[:3]))}")
    return _finish(fig, displays, legend, head, output_file, dpi)


def plot_gifti(surf_path: str | os.PathLike, data_path: str | os.PathLike, output_file: OutputFile = None, *,
               title: str | None = None, max_maps: int = 12, ax: Any = None, figure: Any = None,
               dpi: int = 110) -> np.ndarray:
    """Draw the maps of a ``.func.gii`` / ``.label.gii`` on their ``.surf.gii``.

    Parameters
    ----------
    surf_path, data_path : the surface (n_vertices positions in mm, triangles) and its per-vertex maps
    output_file : path(s) to write (format from the suffix), each atomically
    title : figure title (default: file names, vertex and triangle counts)
    max_maps : draw at most this many maps
    ax, figure : one 3-D Axes per map drawn (``projection="3d"``), or a Figure to add them to

    Flat sheets are seen from above (x right, y up), three maps per row. Returns the Axes, one per
    map (a NumPy object array).
    """
    import nibabel as nib
    from matplotlib.colors import ListedColormap
    from nilearn import plotting, surface

    data_path = Path(data_path)
    coords, faces = surface.load_surf_mesh(str(surf_path))
    gii = nib.load(data_path)
    names = [da.meta.get("Name", f"map {i}") for i, da in enumerate(gii.darrays)]
    arrays = [np.asarray(da.data) for da in gii.darrays][:max_maps]
    flat = np.ptp(np.asarray(coords)[:, 2]) == 0
    is_label = len(gii.labeltable.labels) > 0
    axes = _panels(len(arrays), min(len(arrays), 3), (4.8, 4.2), 0.6 if is_label else 0.0, ax=ax, figure=figure,
                   output_file=output_file, projection="3d", func="plot_gifti")
    if not all(getattr(a, "name", "") == "3d" for a in axes):
        raise ParameterError("plot_gifti draws surfaces: ax must be 3-D Axes (add_subplot(..., projection='3d')).")
    fig = axes[0].figure
    legend = None
    for panel, values, head in zip(axes, arrays, names):
        kw: dict[str, Any] = dict(view=FLAT_VIEW if flat else "lateral", engine="matplotlib", axes=panel,
                                  figure=fig, title=head)
        if is_label:
            entries = sorted((lab.key, lab.label, lab.rgba) for lab in gii.labeltable.labels if lab.key > 0)
            cmap = ListedColormap([e[2][:3] for e in entries])
            legend = (cmap, [e[1] for e in entries])
            plotting.plot_surf_roi((coords, faces), roi_map=values.astype(int), cmap=cmap, vmin=0.5,
                                   vmax=len(entries) + 0.5, colorbar=False, **kw)
        else:
            v = np.where(np.isfinite(values), values, 0.0).astype(float)  # nilearn cannot colour NaN faces
            lim = _limit(values)
            plotting.plot_surf_stat_map((coords, faces), v, cmap=CMAP, vmax=lim, threshold=lim * 1e-9,
                                        colorbar=True, symmetric_cbar=True, **kw)
    head = title or (f"{data_path.name} on {Path(surf_path).name}: {len(coords)} vertices, "
                     f"{len(faces)} triangles")
    return _finish(fig, list(axes), legend, head, output_file, dpi)


def render_nifti(path: Any, png: str | os.PathLike | None = None, *, title: str | None = None,
                 max_volumes: int = 12, dpi: int = 110) -> Path:
    """Write :func:`plot_nifti` of a NIfTI file (or a Nifti1Image) to one PNG; returns its path.

    Default ``png``: ``<stem>_nifti.png`` next to the file (an image in memory needs ``png=``).
    """
    import nibabel as nib

    if isinstance(path, nib.Nifti1Image) and png is None:
        raise ParameterError("render_nifti(image): an image in memory has no file to put the PNG next to; pass png=<path>.")
    png = Path(png) if png is not None else companion(Path(path), "_nifti.png")
    plot_nifti(path, png, title=title, max_volumes=max_volumes, dpi=dpi)
    return png


def render_gifti(surf_path: str | os.PathLike, data_path: str | os.PathLike, png: str | os.PathLike | None = None,
                 *, title: str | None = None, max_maps: int = 12, dpi: int = 110) -> Path:
    """Write :func:`plot_gifti` to one PNG; returns its path (default ``<stem>_gifti.png`` next to ``data_path``)."""
    png = Path(png) if png is not None else companion(Path(data_path), "_gifti.png")
    plot_gifti(surf_path, data_path, png, title=title, max_maps=max_maps, dpi=dpi)
    return png
