"""cortexsim.compare: loading brain maps, alignment, statistics under spatial nulls, CLI (figure: test_figures_compare.py)."""
from __future__ import annotations

import json
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import ndimage

from cortexsim import compare, export
from cortexsim.compare.align import Transform, fit_similarity, match_points
from cortexsim.compare.nulls import p_value, surrogates
from cortexsim.compare.stats import dice_jaccard, rsa_maps, threshold_patches
from cortexsim.errors import MapError
from cortexsim.grid import Grid

SPACING = 0.75  # mm between units of the test sheets: 40 × 40 units on a 30 mm sheet
CENTRES = np.array([[7.0, 7.0], [22.0, 8.0], [8.0, 20.0], [17.0, 24.0]])  # no rotation maps it onto itself


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the coarser-grid notice
        yield


def jittered(n=40, spacing=SPACING, seed=0):
    g = np.stack(np.meshgrid(np.arange(n), np.arange(n), indexing="ij"), -1).reshape(-1, 2) * spacing
    return g + np.random.default_rng(seed).uniform(-spacing / 4, spacing / 4, g.shape)


def blobs(p, centres=CENTRES, sigma=(2.0, 1.5, 2.5, 1.8), amp=(3.0, 2.5, 3.0, 2.0)):
    """A known selectivity map: Gaussian patches (mm)."""
    d2 = ((p[:, None, :] - centres[None]) ** 2).sum(-1)
    return (np.asarray(amp) * np.exp(-d2 / (2 * np.asarray(sigma) ** 2))).sum(1)


def smooth_field(p, sd, seed, sigma_mm=2.0):
    """Smooth Gaussian noise (a Gaussian-filtered white-noise image) read at positions p (mm, within 0..32)."""
    img = ndimage.gaussian_filter(np.random.default_rng(seed).normal(size=(70, 70)), sigma_mm / 0.5)
    img *= sd / img.std()
    ij = np.clip((p / 0.5).round().astype(int) + 3, 0, 69)
    return img[ij[:, 0], ij[:, 1]]


def unit_map(values, pos, name="faces", **attrs):
    coords = {"x_mm": ("unit", pos[:, 0]), "y_mm": ("unit", pos[:, 1])}
    if pos.shape[1] == 3:
        coords["z_mm"] = ("unit", pos[:, 2])
    return xr.DataArray(values, dims="unit", coords=coords, name=name, attrs=attrs)


# ---------------------------------------------------------------------- the Done-when test


PLANTED = Transform.similarity(25.0, (3.0, -2.0))  # model mm → target mm: rotate 25° about the origin, shift


@pytest.fixture(scope="module")
def planted():
    pos = jittered()
    model = unit_map(blobs(pos), pos)
    # the target samples the same cortex at other points, adds smooth noise, then lives in a rotated, shifted frame
    tp = jittered(seed=1)
    values = blobs(tp) + smooth_field(tp, 0.4, seed=2)
    return model, pos, values, PLANTED.apply(tp)


@pytest.mark.slow
@pytest.mark.parametrize("align", ["correlation", "patches"])
def test_planted_target_is_recovered(planted, align):
    model, pos, values, target_pos = planted
    table = compare.compare_maps(model, values, target_positions=target_pos, align=align, n_perm=199, seed=0)
    row = table.iloc[0]
    fitted = Transform(np.array(table.attrs["transform"]))
    assert abs(fitted.angle_deg - 25.0) < 2.0 and abs(row.rotation_deg - 25.0) < 2.0
    assert abs(fitted.scale - 1.0) < 0.05
    moved = np.linalg.norm(fitted.apply(pos) - PLANTED.apply(pos), axis=1)  # where each model unit lands, mm
    assert moved.mean() < 1.0
    centre = pos.mean(axis=0, keepdims=True)
    assert np.linalg.norm(fitted.apply(centre) - PLANTED.apply(centre)) < 1.0
    assert row.pearson_r > 0.7 and row.p_value < 0.01 and row["null"] == "moran" and row.n_perm == 199
    assert row.p_value == pytest.approx(1 / 200)  # no surrogate reaches the observed r
    assert row.dice > 0.7
    assert row.model_n_patches == 4 and row.target_n_patches == 4
    assert row.centroid_distance_mm < 1.5


@pytest.mark.slow
def test_independent_smooth_maps_are_rarely_significant_under_the_spatial_null(planted):
    model, pos, _, _ = planted
    tp = jittered(seed=3)
    spatial, naive = [], []
    for seed in range(10):  # smooth maps unrelated to the blobs
        other = smooth_field(tp, 1.0, seed=100 + seed, sigma_mm=3.0)
        spatial.append(compare.compare_maps(model, other, target_positions=tp, n_perm=199).iloc[0].p_value)
        naive.append(compare.compare_maps(model, other, target_positions=tp, n_perm=199, null="shuffle").iloc[0].p_value)
    assert spatial[0] > 0.05
    assert sum(p < 0.05 for p in spatial) <= 1  # ≈ the nominal 5 %
    assert sum(p < 0.05 for p in naive) >= 5  # a pixel shuffle calls most of them "significant"


# ---------------------------------------------------------------------- loading


def test_exported_nifti_gifti_npz_load_back_as_the_same_map(tmp_path):
    pos = jittered(30, 1.0)
    d = unit_map(blobs(pos, CENTRES * 0.9), pos, name="dprime")
    nii = export.to_nifti(d, tmp_path / "d.nii.gz", voxel_mm=1.0)
    bm = compare.load_map(nii)
    assert bm.ndim == 2 and bm.names == ["dprime"] and bm.data.shape == (30, 30, 1, 1)
    centres = Grid.covering(pos, 1.0).centres()  # sampled at a voxel centre, the volume gives that voxel
    np.testing.assert_allclose(bm.sample(centres)[:, 0], np.asarray(nib.load(nii).dataobj)[..., 0].T.ravel(),
                               rtol=1e-6, atol=1e-12)
    files = export.to_gifti(d, tmp_path / "d.surf.gii", tmp_path / "d.func.gii")
    gm = compare.load_map(files["func"], surface=files["surf"])
    assert gm.names == ["dprime"] and gm.ndim == 2
    np.savez(tmp_path / "d.npz", values=d.values, positions=pos, names=np.array(["dprime"]))
    for target in (nii, (files["func"], {"surface": files["surf"]}), tmp_path / "d.npz"):
        path, kw = target if isinstance(target, tuple) else (target, {})
        row = compare.compare_maps(d, path, n_perm=20, **kw).iloc[0]
        # the NIfTI holds each voxel's nearest unit, the model grid interpolates the units linearly
        assert row.pearson_r > (0.98 if path == nii else 0.9999) and row.dice > 0.9 and row["align"] == "none"
        assert row.model_map == row.target_map == "dprime"


def test_nifti_with_its_own_oblique_affine_is_placed_in_mm(tmp_path):
    # a target volume whose axes are rotated 90° and flipped: sampled through its affine, it matches
    pos = jittered(30, 1.0)
    d = unit_map(blobs(pos, CENTRES * 0.9), pos)
    grid = Grid((0.0, 0.0), 1.0, (30, 30))
    vol = blobs(grid.centres(), CENTRES * 0.9).reshape(grid.array_shape)  # (y, x): index i along y
    affine = np.array([[0, 1.0, 0, 0], [1.0, 0, 0, 0], [0, 0, 1.0, 5.0], [0, 0, 0, 1]])  # i → y, j → x, z = 5
    nib.save(nib.Nifti1Image(vol[:, :, None].astype(np.float32), affine), tmp_path / "t.nii")
    bm = compare.load_map(tmp_path / "t.nii")
    assert bm.ndim == 2
    np.testing.assert_allclose(bm.sample(grid.centres())[:, 0], vol.ravel(), rtol=1e-6)  # i → y, j → x
    assert np.isnan(bm.sample(np.c_[grid.centres()[:3], [[5.0]] * 3] + [0, 0, 1.0])).all()  # off the z = 5 slice
    assert compare.compare_maps(d, tmp_path / "t.nii", n_perm=10).iloc[0].pearson_r > 0.99


def test_user_affine_and_3d_volume(tmp_path):
    pos = jittered(30, 1.0)
    d = unit_map(blobs(pos, CENTRES * 0.9), pos)
    shift = np.eye(3)
    shift[:2, 2] = (40.0, -10.0)  # the target frame is the model frame moved by (40, -10) mm
    target = unit_map(d.values, pos + (40.0, -10.0))
    with pytest.raises(MapError, match="share 0 pixels"):
        compare.compare_maps(d, target, n_perm=10)
    row = compare.compare_maps(d, target, align=shift, n_perm=10).iloc[0]
    assert row.pearson_r > 0.999 and row["align"] == "affine" and row.shift_x_mm == 40.0
    # a 3-D layout against a 3-D volume
    g = np.stack(np.meshgrid(*[np.arange(12.0)] * 3, indexing="ij"), -1).reshape(-1, 3)
    v3 = unit_map(np.exp(-((g - (4, 6, 7)) ** 2).sum(1) / 8), g)
    nii = export.to_nifti(v3, tmp_path / "v3.nii.gz", voxel_mm=1.0)
    r3 = compare.compare_maps(v3, nii, n_perm=10).iloc[0]
    assert r3.pearson_r > 0.999 and "shift_z_mm" in r3.index and r3.model_n_patches == 1


def test_rsa_of_category_maps_and_pairing_by_name(tmp_path):
    pos = jittered(30, 1.0)
    rng = np.random.default_rng(0)
    cats = ["faces", "bodies", "places", "objects"]
    centres = rng.uniform(5, 25, size=(4, 4, 2))
    maps = np.stack([blobs(pos, c) for c in centres])
    maps[1] += 0.8 * maps[0]  # bodies resemble faces, as in cortex
    model = unit_map(maps[0], pos, name="dprime").expand_dims(category=cats).copy(data=maps)
    noisy = maps + 0.3 * np.stack([smooth_field(pos, 1.0, seed=s) for s in range(4)])
    nii = export.to_nifti(unit_map(noisy[0], pos).expand_dims(category=cats).copy(data=noisy),
                          tmp_path / "t.nii.gz", voxel_mm=1.0)
    table = compare.compare_maps(model, nii, n_perm=20)
    assert list(table.model_map) == [f"dprime_{c}" for c in cats]  # paired by the last name token
    assert list(table.target_map) == [f"faces_{c}" for c in cats]
    assert table.rsa_n_categories.iloc[0] == 4 and table.rsa_kendall_tau.iloc[0] > 0.6
    assert table.rsa_p_value.iloc[0] == pytest.approx(1 / 24)  # exact over the 4! category orders
    shuffled = rsa_maps(maps, maps[[2, 3, 0, 1]])
    assert shuffled["kendall_tau"] < table.rsa_kendall_tau.iloc[0]


# ---------------------------------------------------------------------- pieces


def test_fit_similarity_and_point_matching_recover_exact_transforms():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 20, size=(6, 2))
    true = Transform.similarity(-70.0, (5.0, 2.0), scale=1.3)
    t = fit_similarity(src, true.apply(src))
    np.testing.assert_allclose(t.matrix, true.matrix, atol=1e-9)
    assert t.angle_deg == pytest.approx(-70.0) and t.scale == pytest.approx(1.3)
    rigid = fit_similarity(src, true.apply(src), scale=False)
    assert rigid.scale == pytest.approx(1.0)
    order = rng.permutation(6)  # unlabelled: the target's points come in another order
    m, rows, cols, rms = match_points(src, true.apply(src)[order])
    assert rms < 1e-6 and np.array_equal(order[cols], rows)
    np.testing.assert_allclose(Transform(m.matrix).inverse().apply(true.apply(src)), src, atol=1e-6)
    r3 = Transform(np.r_[np.c_[np.linalg.qr(rng.normal(size=(3, 3)))[0] @ np.diag([1, 1, 1]), [1, 2, 3]], [[0, 0, 0, 1]]])
    if np.linalg.det(r3.matrix[:3, :3]) < 0:
        r3 = Transform(r3.matrix @ np.diag([-1, 1, 1, 1]))
    p3 = rng.normal(size=(5, 3))
    np.testing.assert_allclose(fit_similarity(p3, r3.apply(p3)).matrix, r3.matrix, atol=1e-9)


def test_spatial_surrogates_keep_autocorrelation_shuffles_do_not():
    from cortexsim.analysis.smoothness import morans_i

    pos = jittered(25, 1.0)
    x = smooth_field(pos, 1.0, seed=4, sigma_mm=3.0)
    observed = float(morans_i(x, pos, k=8)["I"])
    moran = surrogates(x, pos, 30, "moran", seed=0)
    shuffled = surrogates(x, pos, 30, "shuffle", seed=0)
    assert moran.shape == shuffled.shape == (30, len(x))
    # Moran surrogates keep the mean and SD (up to brainspace's float32 eigenvectors)
    np.testing.assert_allclose(moran.mean(axis=1), x.mean(), atol=0.02 * x.std())
    np.testing.assert_allclose(moran.std(axis=1, ddof=1), x.std(ddof=1), rtol=0.02)
    i_moran = np.mean([float(morans_i(s, pos, k=8)["I"]) for s in moran[:10]])
    i_shuffle = np.mean([float(morans_i(s, pos, k=8)["I"]) for s in shuffled[:10]])
    assert observed > 0.8 and i_moran > 0.6 and abs(i_shuffle) < 0.05
    np.testing.assert_array_equal(np.sort(shuffled[0]), np.sort(x))
    np.testing.assert_array_equal(surrogates(x, pos, 5, "moran", seed=3), surrogates(x, pos, 5, "moran", seed=3))
    assert p_value(0.5, np.array([0.1, -0.6, 0.2])) == pytest.approx(2 / 4)
    assert p_value(0.5, np.array([0.1, -0.6, 0.2]), "greater") == pytest.approx(1 / 4)


@pytest.mark.slow
def test_variogram_null_runs_and_keeps_the_values():
    pos = jittered(12, 1.0)
    x = smooth_field(pos, 1.0, seed=5)
    s = surrogates(x, pos, 5, "variogram", seed=0)
    assert s.shape == (5, len(x))
    np.testing.assert_allclose(np.sort(s, axis=1), np.broadcast_to(np.sort(x), s.shape))  # resample=True


def test_patches_agree_with_the_analysis_patches_and_dice_by_hand():
    from cortexsim.analysis.patches import patches

    grid = Grid((0.0, 0.0), 0.5, (60, 50))
    img = blobs(grid.centres(), CENTRES * 0.9).reshape(grid.array_shape)
    mine = threshold_patches(img, grid, 1.0, min_area_mm2=2.0)
    theirs = patches(grid.dataarray(img), threshold=1.0, sigma_mm=0.0, min_area_mm2=2.0)
    assert mine["n"] == int(theirs["count"]) == 4
    np.testing.assert_allclose(mine["area_mm2"], theirs["area_mm2"].values)
    np.testing.assert_allclose(mine["centroids"], np.c_[theirs["centroid_x_mm"], theirs["centroid_y_mm"]], atol=0.3)
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[:2, :2], b[1:3, 1:3] = True, True  # 4 and 4 pixels sharing 1
    assert dice_jaccard(a, b) == pytest.approx((2 / 8, 1 / 7))


# ---------------------------------------------------------------------- bad input, outputs, CLI


def test_bad_inputs_name_the_file_and_the_fix(tmp_path):
    pos = jittered(20, 1.0)
    d = unit_map(blobs(pos, CENTRES * 0.6), pos)
    nii = export.to_nifti(d, tmp_path / "d.nii", voxel_mm=1.0)
    img = nib.load(nii)
    bare = nib.Nifti1Image(np.asarray(img.dataobj), None)
    bare.header.set_sform(None, code=0)
    bare.header.set_qform(None, code=0)
    nib.save(bare, tmp_path / "noaffine.nii")
    with pytest.raises(MapError, match=r"noaffine\.nii: header fields sform_code and qform_code are both 0"):
        compare.load_map(tmp_path / "noaffine.nii")
    assert compare.load_map(tmp_path / "noaffine.nii", affine=img.affine).ndim == 2  # the fix works
    vol = nib.Nifti1Image(np.ones((5, 5, 5), np.float32), np.eye(4))
    nib.save(vol, tmp_path / "vol.nii")
    with pytest.raises(MapError, match=r"flat \(2-D\) but the target .*vol\.nii is 3-D"):
        compare.compare_maps(d, tmp_path / "vol.nii")
    with pytest.raises(MapError, match="NaN everywhere"):
        compare.compare_maps(d, np.full(len(pos), np.nan), target_positions=pos)
    files = export.to_gifti(d, tmp_path / "d.surf.gii", tmp_path / "d.func.gii")
    small = export.to_gifti(unit_map(d.values[:50], pos[:50]), tmp_path / "s.surf.gii", tmp_path / "s.func.gii")
    with pytest.raises(MapError, match=r"s\.func\.gii: 50 values per map but its surface .*d\.surf\.gii has 400 vertices"):
        compare.load_map(small["func"], surface=files["surf"])
    with pytest.raises(MapError, match="needs its surface"):
        compare.load_map(files["func"])
    with pytest.raises(MapError, match="at least 2"):
        compare.compare_maps(unit_map(np.ones(1), pos[:1]), nii)
    with pytest.raises(MapError, match="needs positions"):
        np.save(tmp_path / "v.npy", d.values)
        compare.load_map(tmp_path / "v.npy")
    with pytest.raises(MapError, match="null must be one of"):
        compare.compare_maps(d, nii, null="spin")
    with pytest.raises(MapError, match="align must be one of"):
        compare.compare_maps(d, nii, align="icp")
    with pytest.raises(MapError, match="no map file"):
        compare.load_map(tmp_path / "missing.nii.gz")
    export.to_nifti(unit_map(np.where(pos[:, 0] < 10, "faces", "none").astype(object), pos, name="pref",
                             classes=["faces"], none="none"), tmp_path / "lab.nii.gz")
    with pytest.raises(MapError, match="label volume"):
        compare.load_map(tmp_path / "lab.nii.gz")


def test_table_files_and_cli(tmp_path, capsys):  # the figure itself: tests/test_figures_compare.py
    from matplotlib.image import imread

    from cortexsim.cli import main

    pos = jittered(24, 1.0)
    d = unit_map(blobs(pos, CENTRES * 0.8), pos, name="dprime")
    t = unit_map(blobs(pos, CENTRES * 0.8) + smooth_field(pos, 0.3, seed=1), pos, name="dprime")
    model_nii = export.to_nifti(d, tmp_path / "model.nii.gz", voxel_mm=1.0)
    target_nii = export.to_nifti(t, tmp_path / "target.nii.gz", voxel_mm=1.0)
    table = compare.compare_maps(model_nii, target_nii, n_perm=50, threshold=1.0)
    written = compare.save_table(table, tmp_path / "cmp")
    back = pd.read_csv(written[0])
    assert back.pearson_r.iloc[0] == pytest.approx(table.pearson_r.iloc[0])
    side = json.loads(written[1].read_text())
    assert side["rows"][0]["dice"] == pytest.approx(table.dice.iloc[0]) and len(side["transform_model_to_target"]) == 3
    out = tmp_path / "cli"
    assert main(["compare", str(model_nii), str(target_nii), "--n-perm", "50", "--threshold", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "pearson_r" in printed and "moran" in printed
    csv = pd.read_csv(out / "comparison.csv")
    assert csv.pearson_r.iloc[0] == pytest.approx(table.pearson_r.iloc[0]) and (out / "comparison.png").stat().st_size > 10_000
    assert imread(out / "comparison.png")[..., :3].std() > 0.05  # a drawn figure, not a blank page
    assert main(["compare", str(model_nii), str(tmp_path / "nope.nii"), "--out", str(out)]) == 2
    assert "no map file" in capsys.readouterr().err
