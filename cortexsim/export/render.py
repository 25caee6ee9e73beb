"""PNG renders of exported files with nilearn, so the user sees what a file holds.

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

from .files import companion

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


def _legend(fig, cmap, names: list[str]) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=cmap(i), edgecolor="0.5", label=n) for i, n in enumerate(names)]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8, frameon=False)


def _limit(data: np.ndarray) -> float:
    finite = np.abs(data[np.isfinite(data)])
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


def render_nifti(path: Any, png: str | os.PathLike | None = None, *, title: str | None = None,
                 max_volumes: int = 12, dpi: int = 110) -> Path:
    """Render every volume of a NIfTI file written by :func:`to_nifti` (or any NIfTI, or a Nifti1Image) to one PNG.

    Flat sheets show their single slice; 3-D volumes up to five z slices.
    Label volumes use the colours of their JSON sidecar's label table.
    Returns the PNG path (default: ``<stem>_nifti.png`` next to the file).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import nibabel as nib
    from nilearn import image, plotting

    if isinstance(path, nib.Nifti1Image):  # an image in memory: stays untouched (see the module notes)
        img, side, path = path, {}, Path(png if png is not None else "image.nii")
        if png is None:
            raise ValueError("render_nifti(image) needs png=<path>.")
    else:
        path = Path(path)
        img, side = nib.load(path), _sidecar(path)
    png = Path(png) if png is not None else companion(path, "_nifti.png")
    data = np.asarray(img.dataobj)
    n_vol = data.shape[3] if data.ndim == 4 else 1
    names = side.get("volumes") or [f"volume {i}" for i in range(n_vol)]
    n_show = min(n_vol, max_volumes)
    labels = side.get("labels")
    nz = data.shape[2] if data.ndim >= 3 else 1
    z = (img.affine @ np.c_[np.zeros((nz, 2)), np.arange(nz), np.ones(nz)].T)[2]
    cuts = [float(z[0])] if nz == 1 else [float(v) for v in z[np.linspace(0, nz - 1, min(nz, 5)).round().astype(int)]]
    cols = min(n_show, 3 if nz == 1 else 1)
    rows = int(np.ceil(n_show / cols))
    width = 4.6 if nz == 1 else 3.0 * len(cuts)
    fig = plt.figure(figsize=(width * cols, 4.0 * rows + (0.6 if labels else 0)))
    try:
        for i in range(n_show):
            vol = image.index_img(img, i) if data.ndim == 4 else img
            # nilearn sets NaN to 0 in the image it gets: hand it a copy, keep the caller's NaN.
            copy = nib.Nifti1Image(np.asanyarray(vol.dataobj).astype(np.float32), vol.affine, vol.header.copy())
            ax = fig.add_subplot(rows, cols, i + 1)
            head = f"{names[i] if i < len(names) else i}{' — ' + str(side['area']) if side.get('area') else ''}"
            kw: dict[str, Any] = dict(bg_img=None, display_mode="z", cut_coords=cuts, axes=ax, figure=fig,
                                      annotate=nz > 1, draw_cross=False, black_bg=False, title=head)
            if labels:
                cmap, label_names = _label_cmap(labels)
                plotting.plot_roi(copy, cmap=cmap, vmin=0.5, vmax=len(label_names) + 0.5, colorbar=False, **kw)
            else:
                lim = _limit(np.asarray(copy.dataobj))
                with warnings.catch_warnings():  # its NaN are the voxels off the sheet: expected
                    warnings.filterwarnings("ignore", message="Non-finite values detected")
                    plotting.plot_stat_map(copy, cmap=CMAP, vmax=lim, threshold=lim * 1e-9, colorbar=True,
                                           symmetric_cbar=True, **kw)
        if labels:
            _legend(fig, cmap, label_names)
        fig.suptitle(title or f"{path.name}: {side.get('voxel_mm', img.header.get_zooms()[0]):.3g} mm voxels, "
                     f"{' × '.join(map(str, data.shape[:3]))}", fontsize=10)
        png.parent.mkdir(parents=True, exist_ok=True)
        _save(fig, png, dpi)
    finally:
        plt.close(fig)
    return png


def render_gifti(surf_path: str | os.PathLike, data_path: str | os.PathLike, png: str | os.PathLike | None = None, *,
                 title: str | None = None, max_maps: int = 12, dpi: int = 110) -> Path:
    """Render the maps of a ``.func.gii`` / ``.label.gii`` on their ``.surf.gii`` to one PNG.

    Flat sheets are seen from above (x right, y up). Returns the PNG path
    (default ``<stem>_gifti.png`` next to ``data_path``).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import nibabel as nib
    from matplotlib.colors import ListedColormap
    from nilearn import plotting, surface

    data_path = Path(data_path)
    png = Path(png) if png is not None else companion(data_path, "_gifti.png")
    coords, faces = surface.load_surf_mesh(str(surf_path))
    gii = nib.load(data_path)
    names = [da.meta.get("Name", f"map {i}") for i, da in enumerate(gii.darrays)]
    arrays = [np.asarray(da.data) for da in gii.darrays][:max_maps]
    flat = np.ptp(np.asarray(coords)[:, 2]) == 0
    is_label = len(gii.labeltable.labels) > 0
    cols = min(len(arrays), 3)
    rows = int(np.ceil(len(arrays) / cols))
    fig = plt.figure(figsize=(4.8 * cols, 4.2 * rows + (0.6 if is_label else 0)))
    try:
        for i, values in enumerate(arrays):
            ax = fig.add_subplot(rows, cols, i + 1, projection="3d")
            kw: dict[str, Any] = dict(view=FLAT_VIEW if flat else "lateral", engine="matplotlib", axes=ax, figure=fig,
                                      title=names[i])
            if is_label:
                entries = sorted((lab.key, lab.label, lab.rgba) for lab in gii.labeltable.labels if lab.key > 0)
                cmap = ListedColormap([e[2][:3] for e in entries])
                plotting.plot_surf_roi((coords, faces), roi_map=values.astype(int), cmap=cmap, vmin=0.5,
                                       vmax=len(entries) + 0.5, colorbar=False, **kw)
            else:
                v = np.where(np.isfinite(values), values, 0.0).astype(float)  # nilearn cannot colour NaN faces
                lim = _limit(values)
                plotting.plot_surf_stat_map((coords, faces), v, cmap=CMAP, vmax=lim, threshold=lim * 1e-9,
                                            colorbar=True, symmetric_cbar=True, **kw)
        if is_label:
            _legend(fig, cmap, [e[1] for e in entries])
        fig.suptitle(title or f"{data_path.name} on {Path(surf_path).name}: {len(coords)} vertices, "
                     f"{len(faces)} triangles", fontsize=10)
        png.parent.mkdir(parents=True, exist_ok=True)
        _save(fig, png, dpi)
    finally:
        plt.close(fig)
    return png


def _save(fig: Any, png: Path, dpi: int) -> None:
    from ..io import atomic_path

    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
