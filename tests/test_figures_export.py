"""cortexsim.plotting.plot_nifti / plot_gifti (and export.render_*): exported files drawn by nilearn, composable."""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.image import imread

from cortexsim import export, plotting
from cortexsim.errors import ParameterError


def _map(values, pos, name="dprime", area="IT", **attrs):
    coords = {"x_mm": ("unit", pos[:, 0]), "y_mm": ("unit", pos[:, 1]), "area": ("unit", np.full(len(pos), area))}
    return xr.DataArray(values, dims="unit", coords=coords, name=name, attrs=attrs)


def _jittered_grid(shape, spacing, origin, seed=0):
    """Units on a regular grid with jitter < spacing/4: each voxel of that spacing holds exactly one unit."""
    axes = [origin[i] + spacing * np.arange(n) for i, n in enumerate(shape)]
    pos = np.stack([m.ravel() for m in np.meshgrid(*axes, indexing="ij")], axis=1)
    return pos + np.random.default_rng(seed).uniform(-spacing / 4, spacing / 4, size=pos.shape)


def test_render_pngs_and_nilearn_nan_pitfall(tmp_path):
    pos = _jittered_grid((12, 10), 1.0, (0.0, 0.0))
    keep = (pos[:, 0] > 4.5) | (pos[:, 1] > 4.5)  # an L-shaped sheet: a corner of its bounding box is off it
    d = _map(np.sin(pos[keep, 0]), pos[keep])
    path = export.to_nifti(d, tmp_path / "d.nii.gz", voxel_mm=1.0)
    img = nib.load(path)
    nan = np.isnan(np.asanyarray(img.dataobj))
    assert nan[0, 0, 0] and not nan[-1].any()  # the corner is NaN, the far column on the sheet
    # nilearn 0.14's plotting sets NaN to 0 inside the image it is handed ...
    from nilearn import plotting

    handed = nib.Nifti1Image(np.asanyarray(img.dataobj).astype(np.float32), img.affine, img.header)
    plotting.plot_stat_map(handed, bg_img=None, display_mode="z", cut_coords=[0]).close()
    assert not np.isnan(np.asanyarray(handed.dataobj)).any()
    # ... our render hands it a copy: the caller's image keeps its NaN
    png = export.render_nifti(img, tmp_path / "mem.png")
    assert np.array_equal(np.isnan(np.asanyarray(img.dataobj)), nan)
    for p in (png, export.render_nifti(path)):
        pixels = imread(p)
        assert pixels.shape[0] > 100 and pixels[..., :3].std() > 0.05  # a drawn map, not a blank page
    files = export.to_gifti(d, tmp_path / "d.surf.gii", tmp_path / "d.func.gii")
    assert imread(export.render_gifti(files["surf"], files["func"]))[..., :3].std() > 0.05


def test_plots_draw_into_given_axes_and_write_only_with_output_file(tmp_path):
    pos = _jittered_grid((8, 6), 1.0, (0.0, 0.0))
    d = _map(pos[:, 0] - 3.5, pos)
    path = export.to_nifti(d, tmp_path / "d.nii.gz", voxel_mm=1.0)
    files = export.to_gifti(d, tmp_path / "d.surf.gii", tmp_path / "d.func.gii")
    before = sorted(p.name for p in tmp_path.iterdir())
    fig = Figure(figsize=(9, 4))
    flat = fig.add_subplot(1, 2, 1)
    surf = fig.add_subplot(1, 2, 2, projection="3d")
    displays = plotting.plot_nifti(path, ax=flat, title="both")
    assert displays.shape == (1,) and displays[0].frame_axes.figure is fig  # nilearn's display, in our figure
    assert fig.get_suptitle() == "both"
    drawn = plotting.plot_gifti(files["surf"], files["func"], ax=surf)
    assert drawn[0] is surf and surf.get_title() == "dprime"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written without output_file
    plotting.plot_nifti(path, [tmp_path / "n.png", tmp_path / "n.svg"])
    assert imread(tmp_path / "n.png")[..., :3].std() > 0.05 and b"<svg" in (tmp_path / "n.svg").read_bytes()[:600]
    with pytest.raises(ParameterError, match="3-D Axes"):
        plotting.plot_gifti(files["surf"], files["func"], ax=Figure().subplots())
    with pytest.raises(ParameterError, match="png="):
        plotting.render_nifti(nib.load(path))


def test_label_volume_legend_names_the_labels(tmp_path):
    pos = _jittered_grid((8, 6), 1.0, (0.0, 0.0))
    pref = xr.DataArray(np.where(pos[:, 0] < 4, "faces", "bodies").astype(object), dims="unit",
                        coords={"x_mm": ("unit", pos[:, 0]), "y_mm": ("unit", pos[:, 1])}, name="pref",
                        attrs={"classes": ["bodies", "faces"]})
    path = export.to_nifti(pref, tmp_path / "pref.nii.gz", voxel_mm=1.0)
    fig = Figure()
    plotting.plot_nifti(path, figure=fig)
    names = [t.get_text() for t in fig.legends[0].get_texts()]
    side = json.loads((tmp_path / "pref.json").read_text())
    assert names == [side["labels"][k]["name"] for k in sorted(side["labels"], key=int) if int(k) > 0]
    assert set(names) == {"bodies", "faces", "none"}  # to_nifti labels the units of neither class "none" too
