"""cortexsim.export: NIfTI / GIFTI files read back by nibabel and nilearn at the right mm position."""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import xarray as xr

from cortexsim import export
from cortexsim.errors import MapError
from cortexsim.grid import Grid


def _map(values, pos, name="dprime", area="IT", **attrs):
    coords = {"x_mm": ("unit", pos[:, 0]), "y_mm": ("unit", pos[:, 1]), "area": ("unit", np.full(len(pos), area))}
    if pos.shape[1] == 3:
        coords["z_mm"] = ("unit", pos[:, 2])
    return xr.DataArray(values, dims="unit", coords=coords, name=name, attrs=attrs)


def _jittered_grid(shape, spacing, origin, seed=0):
    """Units on a regular grid with jitter < spacing/4: each voxel of that spacing holds exactly one unit."""
    axes = [origin[i] + spacing * np.arange(n) for i, n in enumerate(shape)]
    mesh = np.meshgrid(*axes, indexing="ij")
    pos = np.stack([m.ravel() for m in mesh], axis=1)
    return pos + np.random.default_rng(seed).uniform(-spacing / 4, spacing / 4, size=pos.shape)


def _value_at(img, pos):
    """Value of the voxel holding each mm position, found through the file's own affine (as a viewer does)."""
    ijk = nib.affines.apply_affine(np.linalg.inv(img.affine), np.c_[pos, np.zeros((len(pos), 3 - pos.shape[1]))])
    idx = np.floor(ijk + 0.5).astype(int)
    data = np.asarray(img.dataobj)
    return data[idx[:, 0], idx[:, 1], idx[:, 2]]


@pytest.mark.parametrize("ndim", [2, 3])
def test_nifti_voxel_holding_a_unit_holds_its_value(tmp_path, ndim):
    shape = (9, 7) if ndim == 2 else (6, 5, 4)
    pos = _jittered_grid(shape, 1.5, (12.3, -4.0, 7.0)[:ndim])
    values = np.random.default_rng(1).normal(size=len(pos))
    path = export.to_nifti(_map(values, pos, units="d′"), tmp_path / "d.nii.gz", voxel_mm=1.5)
    img = nib.load(path)  # nibabel
    want = shape + (1,) if ndim == 2 else shape
    assert img.shape == want and img.get_data_dtype() == np.float32
    np.testing.assert_allclose(_value_at(img, pos), values, rtol=1e-6)
    hdr = img.header
    sform, scode = hdr.get_sform(coded=True)
    qform, qcode = hdr.get_qform(coded=True)
    assert scode == qcode == 2
    np.testing.assert_allclose(sform, qform, atol=1e-6)
    assert hdr.get_xyzt_units()[0] == "mm"
    assert b"dprime" in hdr["descrip"].tobytes() and b"area IT" in hdr["descrip"].tobytes()
    # the affine is the raster routine's: the voxel centre of index 0 is the lowest grid point
    np.testing.assert_allclose(img.affine, Grid.covering(pos, 1.5).affine)
    # nilearn reads the same file and places the same voxels at the same mm positions
    from nilearn import image

    nl = image.load_img(str(path))
    np.testing.assert_allclose(nl.affine, img.affine)
    i, j, k = (np.floor(c + 0.5).astype(int) for c in image.coord_transform(
        pos[:, 0], pos[:, 1], pos[:, 2] if ndim == 3 else np.zeros(len(pos)), np.linalg.inv(nl.affine)))
    np.testing.assert_allclose(image.get_data(nl)[i, j, k], values, rtol=1e-6)
    side = json.loads((tmp_path / "d.json").read_text())
    assert side["volumes"] == ["dprime"] and side["area"] == "IT" and side["units"] == ["d′"]
    np.testing.assert_allclose(side["affine"], img.affine)


def test_nifti_off_sheet_voxels_are_nan(tmp_path):
    pos = _jittered_grid((20, 20), 1.0, (0.0, 0.0))
    keep = np.hypot(pos[:, 0] - 9.5, pos[:, 1] - 9.5) > 4  # a hole of radius 4 mm in the middle
    pos = pos[keep]
    img = nib.load(export.to_nifti(_map(np.ones(len(pos)), pos), tmp_path / "h.nii", voxel_mm=1.0))
    data = np.asarray(img.dataobj)[:, :, 0]
    assert np.isnan(data[9, 9]) and np.isnan(data[10, 10])  # centre of the hole
    assert np.isfinite(_value_at(img, pos)).all()
    full = nib.load(export.to_nifti(_map(np.ones(len(pos)), pos), tmp_path / "f.nii", voxel_mm=1.0, mask=None))
    assert np.isfinite(np.asarray(full.dataobj)).all()


def test_nifti_methods_linear_and_gaussian(tmp_path):
    rng = np.random.default_rng(2)
    pos = rng.uniform(0, 20, size=(4000, 2))
    plane = 0.5 * pos[:, 0] - 0.25 * pos[:, 1]
    img = nib.load(export.to_nifti(_map(plane, pos), tmp_path / "l.nii.gz", voxel_mm=1.0, method="linear", mask="hull"))
    data = np.asarray(img.dataobj)[:, :, 0]
    i, j = np.nonzero(np.isfinite(data))
    xyz = nib.affines.apply_affine(img.affine, np.c_[i, j, np.zeros_like(i)])
    np.testing.assert_allclose(data[i, j], 0.5 * xyz[:, 0] - 0.25 * xyz[:, 1], atol=1e-5)
    const = nib.load(export.to_nifti(_map(np.full(4000, 3.0), pos), tmp_path / "g.nii.gz", voxel_mm=1.0,
                                     method="gaussian", fwhm_mm=2.0))
    d = np.asarray(const.dataobj)
    np.testing.assert_allclose(d[np.isfinite(d)], 3.0, rtol=1e-6)
    assert json.loads((tmp_path / "g.json").read_text())["fwhm_mm"] == 2.0


def test_several_maps_make_a_4d_file_with_named_volumes(tmp_path):
    pos = _jittered_grid((8, 6), 1.0, (0.0, 0.0))
    cats = ["faces", "bodies", "places"]
    vals = np.random.default_rng(3).normal(size=(3, len(pos)))
    sel = _map(vals[0], pos).expand_dims(category=cats).copy(data=vals)
    path = export.to_nifti(sel, tmp_path / "sel.nii.gz", voxel_mm=1.0)
    img = nib.load(path)
    assert img.shape == (8, 6, 1, 3)
    side = json.loads((tmp_path / "sel.json").read_text())
    assert side["volumes"] == [f"dprime_{c}" for c in cats]
    for v in range(3):
        np.testing.assert_allclose(_value_at(nib.Nifti1Image(np.asarray(img.dataobj)[..., v], img.affine), pos), vals[v], rtol=1e-6)
    parts = export.to_nifti(sel, tmp_path / "each.nii.gz", voxel_mm=1.0, split=True)
    assert [p.name for p in parts] == [f"each_dprime_{c}.nii.gz" for c in cats]
    np.testing.assert_allclose(_value_at(nib.load(parts[2]), pos), vals[2], rtol=1e-6)
    # a Dataset of per-unit maps (as cortexsim analyze writes) works the same way
    ds = xr.Dataset({"dprime": _map(vals[0], pos), "t": _map(vals[1], pos, name="t")})
    img2 = nib.load(export.to_nifti(ds, tmp_path / "ds.nii.gz", voxel_mm=1.0))
    assert img2.shape == (8, 6, 1, 2)


def test_label_map_nifti_json_and_lut(tmp_path):
    pos = _jittered_grid((10, 10), 1.0, (0.0, 0.0))
    labels = np.where(pos[:, 0] < 3, "faces", np.where(pos[:, 0] > 6, "places", "none")).astype(object)
    pref = _map(labels, pos, name="preference", classes=["faces", "bodies", "places"], none="none")
    path = export.to_nifti(pref, tmp_path / "pref.nii.gz", voxel_mm=1.0)
    img = nib.load(path)
    assert img.get_data_dtype().kind == "i" and img.header.get_intent()[0] == "label"
    side = json.loads((tmp_path / "pref.json").read_text())
    names = {int(k): v["name"] for k, v in side["labels"].items()}
    assert names == {0: "Unknown", 1: "faces", 2: "bodies", 3: "places", 4: "none"}
    got = _value_at(img, pos)
    np.testing.assert_array_equal(np.array([names[k] for k in got]), labels.astype(str))
    lut = export.read_lut(tmp_path / side["lut"])
    assert {k: v[0] for k, v in lut.items()} == names and lut[0][1] == (0, 0, 0)
    with pytest.raises(MapError, match="interpolating labels"):
        export.to_nifti(pref, tmp_path / "bad.nii.gz", method="linear")


def test_gifti_flat_sheet_vertices_triangles_and_data(tmp_path):
    from nilearn import surface

    pos = _jittered_grid((15, 15), 1.0, (5.0, 5.0))
    keep = np.hypot(pos[:, 0] - 12, pos[:, 1] - 12) > 3.5  # a hole the mesh must not bridge
    pos = pos[keep]
    d = _map(pos[:, 0] * 0.1, pos)
    t = _map(-pos[:, 1], pos, name="t")
    files = export.to_gifti([d, t], tmp_path / "IT.surf.gii", tmp_path / "IT.func.gii")
    coords, faces = surface.load_surf_mesh(str(files["surf"]))  # nilearn
    np.testing.assert_allclose(coords[:, :2], pos, atol=1e-5)
    assert (coords[:, 2] == 0).all() and faces.dtype.kind == "i"
    centroids = coords[faces].mean(axis=1)
    assert not (np.hypot(centroids[:, 0] - 12, centroids[:, 1] - 12) < 2.0).any()  # hole left open
    edges = np.linalg.norm(coords[faces] - coords[np.roll(faces, 1, axis=1)], axis=2)
    from scipy.spatial import Delaunay

    tri = Delaunay(pos).simplices
    limit = 3 * np.median(np.linalg.norm(pos[tri] - pos[np.roll(tri, 1, axis=1)], axis=2))
    assert edges.max() <= limit + 1e-5 < 5.0  # the documented default cut: 3 × the median Delaunay edge
    _, tight = export.sheet_mesh(pos, max_edge_mm=1.6)
    assert np.linalg.norm(pos[tight] - pos[np.roll(tight, 1, axis=1)], axis=2).max() <= 1.6
    assert len(faces) > 1.6 * len(pos)  # a whole sheet: ≈ 2 triangles per vertex
    data = surface.load_surf_data(str(files["func"]))
    assert data.shape == (len(pos), 2)
    np.testing.assert_allclose(data[:, 0], pos[:, 0] * 0.1, rtol=1e-6)
    func = nib.load(files["func"])
    assert [a.meta["Name"] for a in func.darrays] == ["dprime", "t"]
    assert all(a.data.dtype == np.float32 and a.intent == nib.nifti1.intent_codes["estimate"] for a in func.darrays)
    surf = nib.load(files["surf"])
    assert surf.darrays[0].meta["GeometricType"] == "Flat"


def test_gifti_3d_sphere_and_labels(tmp_path):
    from cortexsim import layout

    pos = layout.sphere(200)
    pref = _map(np.where(pos[:, 2] > 0, "faces", "none").astype(object), pos, name="preference",
                classes=["faces"], none="none")
    files = export.to_gifti(pref, tmp_path / "s.surf.gii", label_path=tmp_path / "s.label.gii")
    coords, faces = nib.load(files["surf"]).agg_data()
    np.testing.assert_allclose(coords, pos, atol=1e-5)
    edges = {tuple(sorted(e)) for f in faces.tolist() for e in ((f[0], f[1]), (f[1], f[2]), (f[0], f[2]))}
    assert len(coords) - len(edges) + len(faces) == 2  # a closed sphere: Euler characteristic 2
    lab = nib.load(files["label"])
    table = {lb.key: lb.label for lb in lab.labeltable.labels}
    assert table == {0: "Unknown", 1: "faces", 2: "none"}
    got = np.asarray(lab.darrays[0].data)
    np.testing.assert_array_equal(got, np.where(pos[:, 2] > 0, 1, 2))


def test_bad_input_errors_name_the_problem(tmp_path):
    pos = _jittered_grid((4, 4), 1.0, (0.0, 0.0))
    with pytest.raises(MapError, match="NaN everywhere"):
        export.to_nifti(_map(np.full(16, np.nan), pos), tmp_path / "a.nii.gz")
    with pytest.raises(MapError, match="at least 2 units"):
        export.to_nifti(_map(np.ones(1), pos[:1]), tmp_path / "a.nii.gz")
    with pytest.raises(MapError, match=r"must end with \.nii\.gz or \.nii"):
        export.to_nifti(_map(np.ones(16), pos), tmp_path / "a.img")
    mixed = _map(np.ones(16), pos).assign_coords(area=("unit", np.repeat(["V1", "IT"], 8)))
    with pytest.raises(MapError, match="mixes areas"):
        export.to_nifti(mixed, tmp_path / "a.nii.gz")
    export.to_nifti(mixed, tmp_path / "it.nii.gz", area="IT")
    with pytest.raises(MapError, match="x_mm"):
        export.to_nifti(xr.DataArray(np.ones(4), dims="unit", name="v"), tmp_path / "a.nii.gz")
    with pytest.raises(MapError, match=r"\.func\.gii"):
        export.to_gifti(_map(np.ones(16), pos), tmp_path / "a.surf.gii")
    assert not list(tmp_path.glob("a.*"))


def test_writes_are_atomic(tmp_path, monkeypatch):
    pos = _jittered_grid((4, 4), 1.0, (0.0, 0.0))
    target = tmp_path / "m.nii.gz"
    export.to_nifti(_map(np.ones(16), pos), target)
    before = target.read_bytes()

    def boom(self):
        raise RuntimeError("disk full")

    monkeypatch.setattr(nib.Nifti1Image, "to_bytes", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        export.to_nifti(_map(np.zeros(16), pos), target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.nii.gz"]  # no temp file left


def test_nifti_image_in_memory_is_the_file_written(tmp_path):
    from cortexsim.errors import ParameterTypeError

    pos = _jittered_grid((6, 5), 1.0, (0.0, 0.0))
    d = _map(np.arange(30.0), pos)
    img, sidecar, table = export.nifti_image(d, voxel_mm=1.0, method="nearest")
    written = nib.load(export.to_nifti(d, tmp_path / "d.nii.gz", voxel_mm=1.0))
    assert table is None and sidecar["volumes"] == ["dprime"]
    assert np.array_equal(np.asarray(img.dataobj), np.asarray(written.dataobj), equal_nan=True)
    assert np.allclose(img.affine, written.affine)
    assert np.allclose(np.sort(_value_at(img, pos)), np.arange(30.0))  # each unit alone in its 1 mm voxel
    with pytest.raises(ParameterTypeError, match="voxel_mm, method"):
        export.nifti_image(d, voxel=1.0)
