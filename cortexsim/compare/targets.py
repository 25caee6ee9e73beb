"""Brain maps to compare with: NIfTI volumes, GIFTI surfaces + data, NumPy arrays, per-unit maps.

Every map becomes a :class:`BrainMap`: one or several named maps on a regular volume
(``data`` (nx, ny, nz, m) in NIfTI index order + a 4×4 ``affine`` index → mm). A NIfTI
file keeps its own voxels and affine; scattered points (GIFTI vertices, NumPy
positions, model units) are resampled onto a grid at their own spacing (linear
interpolation on their Delaunay triangulation, or the mean per voxel when the
points are much denser than the voxels; off-sheet voxels NaN). A map is flat
(``ndim == 2``) when its volume has one slice parallel to the x–y plane.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..errors import MapError, SheetError
from ..grid import FWHM_PER_SIGMA, Grid, resample, smooth_nan, unit_spacing

#: Points per voxel above which points are averaged into voxels instead of interpolated.
MEAN_ABOVE_POINTS_PER_VOXEL = 4.0


@dataclass
class BrainMap:
    """Named maps on a regular volume in mm.

    Attributes
    ----------
    data : ndarray (nx, ny, nz, m), float, NaN off the map
    affine : ndarray (4, 4), voxel index (i, j, k) → mm
    names : list of str, one per map
    ndim : 2 (flat: one slice parallel to x–y) or 3
    source : str, where the map came from (for messages)
    """

    data: np.ndarray
    affine: np.ndarray
    names: list[str]
    ndim: int
    source: str = "map"

    @property
    def voxel_mm(self) -> np.ndarray:
        """Voxel edge lengths (mm) along i, j, k."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    @property
    def spacing_mm(self) -> float:
        """The in-plane voxel size (mean of the first ``ndim`` edges)."""
        return float(np.mean(self.voxel_mm[: self.ndim]))

    def finite_points(self, index: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(positions (n, ndim) mm, values (n,)) of the defined voxels of map ``index``."""
        vol = self.data[..., index]
        ijk = np.argwhere(np.isfinite(vol))
        pos = ijk @ self.affine[:3, :3].T + self.affine[:3, 3]
        return pos[:, : self.ndim], vol[tuple(ijk.T)]

    def subset(self, index: Sequence[int]) -> BrainMap:
        return BrainMap(self.data[..., list(index)], self.affine, [self.names[i] for i in index], self.ndim, self.source)

    def smoothed(self, resolution_mm: float) -> BrainMap:
        """This map as seen by pixels of ``resolution_mm``: NaN-aware Gaussian anti-aliasing.

        When the pixels are coarser than the voxels, the volume is smoothed with a FWHM of
        ``sqrt(resolution² − voxel²)`` so a sample stands for its whole pixel rather than
        aliasing one voxel; otherwise the map itself is returned.
        """
        vox = self.voxel_mm[: self.ndim]
        extra = np.sqrt(np.maximum(float(resolution_mm) ** 2 - vox ** 2, 0.0))
        if not np.any(extra > 0.5 * vox):
            return self
        sigma = float(np.mean(extra / vox)) / FWHM_PER_SIGMA
        data = np.stack([smooth_nan(self.data[..., m], sigma, axes=tuple(range(self.ndim)))[0]
                         for m in range(self.data.shape[-1])], axis=-1)
        return BrainMap(data, self.affine, self.names, self.ndim, self.source)

    def sample(self, points: np.ndarray) -> np.ndarray:
        """Values (n, m) at ``points`` (n, ndim) in mm: NaN-aware linear interpolation.

        A point takes the weighted mean of the defined voxels around it (NaN where
        less than half the interpolation weight is defined, or outside the volume).
        """
        from scipy import ndimage

        pts = np.asarray(points, dtype=float)
        if pts.shape[1] == 2:
            z = self.affine[2, 3] if self.ndim == 2 else 0.0
            pts = np.c_[pts, np.full(len(pts), z)]
        ijk = (pts - self.affine[:3, 3]) @ np.linalg.inv(self.affine[:3, :3]).T
        data = self.data
        flat = self.ndim == 2 and data.shape[2] == 1
        coords = ijk[:, :2].T if flat else ijk.T
        out = np.full((len(pts), data.shape[-1]), np.nan)
        for m in range(data.shape[-1]):
            vol = data[:, :, 0, m] if flat else data[..., m]
            ok = np.isfinite(vol)
            num = ndimage.map_coordinates(np.where(ok, vol, 0.0), coords, order=1, mode="grid-constant", cval=0.0)
            den = ndimage.map_coordinates(ok.astype(float), coords, order=1, mode="grid-constant", cval=0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[:, m] = np.where(den >= 0.5, num / den, np.nan)
        if flat:  # points off the slice plane are off the map
            out[np.abs(ijk[:, 2]) > 0.5] = np.nan
        return out


# ---------------------------------------------------------------------- points → volume


def points_method(positions: np.ndarray, resolution_mm: float) -> str:
    """"mean" when a voxel holds several points on average, else "linear"."""
    spacing = unit_spacing(positions)
    return "mean" if (resolution_mm / spacing) ** positions.shape[1] >= MEAN_ABOVE_POINTS_PER_VOXEL else "linear"


def rasterize_points(values: np.ndarray, positions: np.ndarray, grid: Grid, method: str = "auto") -> np.ndarray:
    """Scattered maps (n, m) onto ``grid``: (grid.size, m), NaN off the sheet."""
    if method == "auto":
        method = points_method(positions, grid.resolution_mm)
    if method == "linear" and positions.shape[1] == 3:
        method = "mean" if grid.resolution_mm >= unit_spacing(positions) else "nearest"
    try:
        return resample(values, positions, grid, method)
    except SheetError as exc:
        raise MapError(str(exc)) from exc


def _index_volume(flat: np.ndarray, grid: Grid) -> np.ndarray:
    from ..export.nifti import _to_index_order

    return _to_index_order(flat, grid)


def from_points(values: Any, positions: Any, names: Sequence[str] | None = None, *, resolution_mm: float | None = None,
                source: str = "points") -> BrainMap:
    """A :class:`BrainMap` from maps on scattered points.

    Parameters
    ----------
    values : ndarray (n,) or (n, m)
    positions : ndarray (n, 2 | 3), mm (a 3rd column that is constant counts as flat)
    names : one per map (default ``map0``, ``map1``, …)
    resolution_mm : voxel size (default: the points' spacing, :func:`cortexsim.grid.unit_spacing`)
    """
    v = np.asarray(values, dtype=float)
    v = v[:, None] if v.ndim == 1 else v
    pos = np.asarray(positions, dtype=float)
    if pos.ndim != 2 or pos.shape[1] not in (2, 3):
        raise MapError(f"{source}: positions must have shape (n_points, 2 | 3) in mm; got {pos.shape}.")
    if v.ndim != 2 or len(v) != len(pos):
        raise MapError(f"{source}: {len(v)} values but {len(pos)} positions; give one value per point "
                       f"(values (n,) or (n, n_maps), positions (n, 2 | 3)).")
    if not np.isfinite(pos).all():
        raise MapError(f"{source}: positions contain NaN/Inf.")
    if len(pos) < 2:
        raise MapError(f"{source}: a map needs at least 2 points; got {len(pos)}.")
    for m in range(v.shape[1]):
        if not np.isfinite(v[:, m]).any():
            raise MapError(f"{source}: map {m if names is None else names[m]!r} is NaN everywhere; nothing to compare.")
    z = None
    if pos.shape[1] == 3 and np.ptp(pos[:, 2]) <= 1e-9 * max(1.0, float(np.ptp(pos[:, :2]))):
        z, pos = float(pos[0, 2]), pos[:, :2]
    res = unit_spacing(pos) if resolution_mm is None else float(resolution_mm)
    try:
        grid = Grid.covering(pos, res)
    except ValueError as exc:
        raise MapError(f"{source}: {exc}") from exc
    data = _index_volume(rasterize_points(v, pos, grid), grid)
    affine = grid.affine
    if z is not None:
        affine[2, 3] = z
    names = [f"map{m}" for m in range(v.shape[1])] if names is None else [str(n) for n in names]
    if len(names) != v.shape[1]:
        raise MapError(f"{source}: {len(names)} names for {v.shape[1]} maps.")
    return BrainMap(data, affine, names, pos.shape[1], source)


# ---------------------------------------------------------------------- files


def _nifti(path: Path, affine: np.ndarray | None, names: Sequence[str] | None) -> BrainMap:
    import nibabel as nib

    try:
        img = nib.load(path)
    except Exception as exc:  # noqa: BLE001 - any nibabel failure: not a readable NIfTI
        raise MapError(f"{path}: not a readable NIfTI file ({type(exc).__name__}: {exc}).") from exc
    hdr = img.header
    if affine is None:
        s_code, q_code = int(hdr["sform_code"]), int(hdr["qform_code"])
        if s_code == 0 and q_code == 0:
            raise MapError(
                f"{path}: header fields sform_code and qform_code are both 0, so the file has no usable affine "
                f"(voxel → mm). Set one with nibabel (img.set_sform(affine, code=2); nib.save(img, path)) or pass "
                f"affine=<4×4 voxel → mm> (CLI: --target-affine)."
            )
        affine = hdr.get_sform() if s_code > 0 else hdr.get_qform()
    affine = np.asarray(affine, dtype=float)
    if affine.shape != (4, 4) or not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise MapError(f"{path}: the affine must be a finite, invertible 4×4 voxel → mm matrix; got {affine.tolist()}.")
    if hdr.get_intent()[0] == "label":
        raise MapError(f"{path}: a label volume (intent 'label'); compare one binary or continuous map per category "
                       f"(e.g. the d′ maps) instead.")
    data = np.asanyarray(img.dataobj).astype(float)
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim == 3:
        data = data[..., None]
    if data.ndim != 4:
        raise MapError(f"{path}: NIfTI data must be 2-, 3- or 4-D; got shape {data.shape}.")
    side = path.with_name(_stem(path) + ".json")
    if names is None and side.exists():
        try:
            names = json.loads(side.read_text()).get("volumes")
        except ValueError:
            names = None
    if names is None or len(names) != data.shape[-1]:
        names = [_stem(path)] if data.shape[-1] == 1 else [f"{_stem(path)}_{i}" for i in range(data.shape[-1])]
    flat = data.shape[2] == 1 and np.allclose(affine[2, :2], 0.0)
    for m, n in enumerate(names):
        if not np.isfinite(data[..., m]).any():
            raise MapError(f"{path}: volume {n!r} is NaN everywhere; nothing to compare.")
    return BrainMap(data, affine, list(map(str, names)), 2 if flat else 3, str(path))


def _stem(path: Path) -> str:
    from ..export.files import split_suffix

    return split_suffix(path)[0].name


def _gifti(path: Path, surface: Any, names: Sequence[str] | None, resolution_mm: float | None) -> BrainMap:
    import nibabel as nib

    if surface is None:
        raise MapError(f"{path}: GIFTI data needs its surface for the vertex positions; pass surface=<.surf.gii> "
                       f"(CLI: --target-surface).")
    try:
        surf = nib.load(surface)
        gii = nib.load(path)
    except Exception as exc:  # noqa: BLE001
        raise MapError(f"{path} / {surface}: not readable GIFTI ({type(exc).__name__}: {exc}).") from exc
    points = [d for d in surf.darrays if d.intent == nib.nifti1.intent_codes["pointset"]]
    if not points:
        raise MapError(f"{surface}: no NIFTI_INTENT_POINTSET array (vertex coordinates); pass the .surf.gii.")
    coords = np.asarray(points[0].data, dtype=float)
    arrays = [np.asarray(d.data, dtype=float).reshape(len(d.data), -1) for d in gii.darrays
              if d.intent != nib.nifti1.intent_codes["pointset"] and d.intent != nib.nifti1.intent_codes["triangle"]]
    if not arrays:
        raise MapError(f"{path}: no data arrays.")
    values = np.concatenate(arrays, axis=1)
    if len(values) != len(coords):
        raise MapError(f"{path}: {len(values)} values per map but its surface {surface} has {len(coords)} vertices; "
                       f"the data and the surface must come from the same mesh.")
    if names is None:
        names = [d.meta.get("Name", f"{_stem(path)}_{i}") for i, d in enumerate(gii.darrays)][: values.shape[1]]
        if len(names) != values.shape[1]:
            names = None
    return from_points(values, coords, names, resolution_mm=resolution_mm, source=str(path))


def _numpy(path: Path, positions: Any, names: Sequence[str] | None, resolution_mm: float | None) -> BrainMap:
    try:
        loaded = np.load(path, allow_pickle=False)  # never unpickle a file
    except Exception as exc:  # noqa: BLE001
        raise MapError(f"{path}: not a readable NumPy file without pickles ({type(exc).__name__}: {exc}).") from exc
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            keys = set(loaded.files)
            if "values" not in keys:
                raise MapError(f"{path}: an .npz map needs an array 'values' (n,) or (n, n_maps); it has {sorted(keys)}.")
            values = loaded["values"]
            if positions is None:
                if "positions" in keys:
                    positions = loaded["positions"]
                elif {"x_mm", "y_mm"} <= keys:
                    positions = np.stack([loaded[k] for k in ("x_mm", "y_mm", "z_mm") if k in keys], axis=1)
            if names is None and "names" in keys:
                names = [str(n) for n in loaded["names"].tolist()]
    else:
        values = loaded
    if positions is None:
        raise MapError(f"{path}: a NumPy map needs positions in mm: an .npz with 'positions' (n, 2 | 3) or x_mm/y_mm, "
                       f"or positions=<array> (CLI: --target-positions file.npy).")
    if isinstance(positions, (str, os.PathLike)):
        positions = np.load(positions, allow_pickle=False)
    values = np.asarray(values)
    pos = np.asarray(positions)
    if values.ndim == 2 and values.shape[0] != len(pos) and values.shape[1] == len(pos):
        values = values.T  # (n_maps, n) → (n, n_maps)
    return from_points(values, pos, names, resolution_mm=resolution_mm, source=str(path))


def _unit_maps(maps: Any, area: str | None, names: Sequence[str] | None, resolution_mm: float | None,
               source: str) -> BrainMap:
    from ..export.inputs import collect_maps

    um = collect_maps(maps, area, names)
    if any(um.categorical()):
        raise MapError(f"{source}: label maps {um.names} cannot be correlated; compare the per-category "
                       f"selectivity maps instead.")
    return from_points(um.numeric(), um.positions, um.names, resolution_mm=resolution_mm, source=source)


def load_map(
    source: Any,
    positions: Any = None,
    *,
    names: Sequence[str] | None = None,
    affine: Any = None,
    surface: str | os.PathLike | None = None,
    resolution_mm: float | None = None,
    area: str | None = None,
    what: Sequence[str] = ("dprime",),
    **unit_kw: Any,
) -> BrainMap:
    """Load a brain (or model) map.

    Parameters
    ----------
    source :
        * ``.nii`` / ``.nii.gz``: a volume (3-D, or 4-D = several maps; a cortexsim JSON
          sidecar names the volumes) in the mm space of its sform (or qform);
        * ``.func.gii`` / ``.shape.gii`` / ``.gii`` data with ``surface=<.surf.gii>``: one
          map per data array at the surface's vertices;
        * ``.npy`` (values, with ``positions``) or ``.npz`` (``values`` + ``positions`` or
          ``x_mm``/``y_mm``[/``z_mm``], optional ``names``); loaded without pickles;
        * an ndarray of values with ``positions`` (n, 2 | 3) in mm;
        * a per-unit DataArray / (category, unit) DataArray / Dataset (cortexsim maps);
        * a Sheet or ``units_<area>.nc`` file (maps ``what`` of ``area``, as ``cortexsim export``).
    positions : ndarray (n, 2 | 3) or path to a .npy, mm
    names : map names (default: from the file)
    affine : 4×4 voxel → mm, overriding (or supplying) a NIfTI's own
    surface : the ``.surf.gii`` of GIFTI data
    resolution_mm : voxel size when points are resampled (default: their spacing)
    area, what, unit_kw : which maps of a Sheet / units file (see :func:`cortexsim.export.load_unit_maps`)

    Raises
    ------
    MapError
        Missing file, no usable affine (sform and qform code 0), unknown format, values
        and vertices/positions that do not match, an all-NaN map, a single point.
    """
    if isinstance(source, BrainMap):
        return source
    if isinstance(source, (xr.DataArray, xr.Dataset, dict, list, tuple)) and not isinstance(source, np.ndarray):
        return _unit_maps(source, area, names, resolution_mm, "model map" if positions is None else "map")
    if isinstance(source, np.ndarray):
        if positions is None:
            raise MapError("an array map needs positions=<(n, 2 | 3) array in mm>.")
        return from_points(source, positions, names, resolution_mm=resolution_mm, source="array")
    path = Path(source)
    if not path.exists():
        raise MapError(f"no map file {str(path)!r}.")
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return _nifti(path, affine, names)
    if name.endswith(".gii"):
        if name.endswith(".surf.gii"):
            raise MapError(f"{path}: a surface holds positions, not a map; pass the .func.gii with surface={path}.")
        return _gifti(path, surface, names, resolution_mm)
    if name.endswith((".npy", ".npz")):
        return _numpy(path, positions, names, resolution_mm)
    if name.endswith((".nc", ".h5", ".hdf5")):
        from ..export.sources import load_unit_maps

        maps = load_unit_maps(path, list(what), area=area, **unit_kw)
        if len(maps) != 1:
            raise MapError(f"{path}: maps of {len(maps)} areas ({', '.join(maps)}); pick one with area=... (--area).")
        group = next(iter(maps.values()))
        return _unit_maps(group, None, None, resolution_mm, str(path))
    raise MapError(f"{path}: unknown map format; use .nii/.nii.gz, .func.gii (+ .surf.gii), .npy/.npz, or a Sheet / "
                   f"units_<area>.nc.")
