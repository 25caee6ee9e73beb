"""Patches: planted discs recovered with the right area/centroid; hand-counted small maps; errors."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import ndimage

import cortexsim as cx
from cortexsim.analysis._grid import nan_gaussian
from cortexsim.analysis.patches import patches, patches_by_category

DISCS = [(25.0, 30.0, 10.0), (70.0, 65.0, 13.0), (75.0, 20.0, 4.0)]  # x, y, radius (mm); the last is small


def unit_map(values, pos):
    return xr.DataArray(values, dims="unit", coords={"x_mm": ("unit", pos[:, 0]), "y_mm": ("unit", pos[:, 1])}, name="t")


def disc_values(pos, amplitude=8.0):
    v = np.zeros(len(pos))
    for x, y, r in DISCS:
        v[np.hypot(pos[:, 0] - x, pos[:, 1] - y) <= r] = amplitude
    return v


def grid_positions(step=1.0, size=100.0):
    g = np.arange(0, size, step)
    x, y = np.meshgrid(g, g)
    return np.c_[x.ravel(), y.ravel()]


def check_discs(out):
    assert int(out["count"]) == 2
    for x, y, r in DISCS[:2]:
        k = int(np.argmin(np.hypot(out["centroid_x_mm"].values - x, out["centroid_y_mm"].values - y)))
        assert float(out["area_mm2"][k]) == pytest.approx(np.pi * r * r, rel=0.10)
        assert float(out["centroid_x_mm"][k]) == pytest.approx(x, abs=0.5)
        assert float(out["centroid_y_mm"][k]) == pytest.approx(y, abs=0.5)


def test_planted_discs_on_a_grid_sheet():
    pos = grid_positions()
    out = patches(unit_map(disc_values(pos), pos), threshold=4.0, sigma_mm=2.4, min_area_mm2=100)
    check_discs(out)
    assert out["smoothed"].dims == ("y_mm", "x_mm") and out["label"].shape == (100, 100)
    assert float(out["peak"].max()) == pytest.approx(8.0, abs=0.01)
    # the min-area filter is what removed the small disc (≈ 50 mm², less after smoothing)
    everything = patches(unit_map(disc_values(pos), pos), min_area_mm2=0)
    assert int(everything["count"]) == 3
    assert 0 < float(everything["area_mm2"][2]) < 100
    assert float(everything["centroid_x_mm"][2]) == pytest.approx(75.0, abs=0.5)


def test_planted_discs_on_an_irregular_sheet():
    pos = np.random.default_rng(0).uniform(0, 100, (15_000, 2))
    out = patches(unit_map(disc_values(pos), pos), resolution_mm=1.0)
    check_discs(out)


def test_hand_counted_patches_without_smoothing():
    img = np.zeros((6, 8))
    img[0:3, 0:4] = 5.0  # 12 pixels
    img[4:6, 5:7] = 9.0  # 4 pixels
    img[5, 0] = 5.0  # 1 pixel, diagonal to nothing
    da = xr.DataArray(img, dims=("y_mm", "x_mm"), coords={"y_mm": np.arange(6) * 0.5, "x_mm": np.arange(8) * 0.5})
    out = patches(da, threshold=4.0, sigma_mm=0.0, min_area_mm2=0.5, stat="dprime")
    np.testing.assert_allclose(out["area_mm2"].values, [3.0, 1.0])
    np.testing.assert_allclose(out["centroid_x_mm"].values, [0.75, 2.75])
    np.testing.assert_allclose(out["centroid_y_mm"].values, [0.5, 2.25])
    np.testing.assert_allclose(out["peak"].values, [5.0, 9.0])
    assert int((out["label"] == 1).sum()) == 12 and out.attrs["stat"] == "dprime"
    with pytest.warns(FutureWarning, match=r"patches\(kind=...\) is deprecated.*use stat="):
        old = patches(da, threshold=4.0, sigma_mm=0.0, min_area_mm2=0.5, kind="dprime")
    assert old.attrs["stat"] == "dprime" and int(old["count"]) == int(out["count"])


def test_nan_aware_smoothing():
    img = np.full((40, 40), 5.0)
    img[:, 30:] = np.nan  # outside the sheet
    img[10, 10] = np.nan  # an empty pixel inside
    sm = nan_gaussian(img, 3.0)
    np.testing.assert_allclose(sm[:, :30], 5.0)  # no dilution at the edge, the hole is filled
    assert np.isnan(sm[:, 30:]).all()
    rnd = np.random.default_rng(0).normal(size=(60, 60))
    inner = slice(20, 40)
    np.testing.assert_allclose(nan_gaussian(rnd, 2.0)[inner, inner], ndimage.gaussian_filter(rnd, 2.0)[inner, inner], atol=1e-6)


def test_patches_by_category_from_a_sheet():
    pos = grid_positions(2.0, 100.0)
    rng = np.random.default_rng(1)
    domains = np.repeat(["faces", "places", "objects"], 12)
    resp = rng.normal(size=(len(domains), len(pos)))
    in_a = np.hypot(pos[:, 0] - 25, pos[:, 1] - 30) <= 12
    in_b = np.hypot(pos[:, 0] - 70, pos[:, 1] - 65) <= 15
    resp[np.ix_(domains == "faces", in_a)] += 4.0
    resp[np.ix_(domains == "places", in_b)] += 4.0
    ds = cx.make_sheet(resp.astype(np.float32), x_mm=pos[:, 0], y_mm=pos[:, 1], stimuli={"domain": domains})
    out = patches_by_category(ds, by="domain", threshold=4.0, sigma_mm=2.4, min_area_mm2=100)
    assert out["category"].values.tolist() == ["faces", "objects", "places"]
    np.testing.assert_array_equal(out["count"].values, [1, 0, 1])
    assert float(out["total_area_mm2"].sel(category="faces")) == pytest.approx(np.pi * 144, rel=0.15)
    assert float(out["total_area_mm2"].sel(category="places")) == pytest.approx(np.pi * 225, rel=0.15)
    assert np.isnan(float(out["mean_area_mm2"].sel(category="objects")))
    sub = patches_by_category(ds, by="domain", categories=["places"])
    assert sub["count"].values.tolist() == [1]
    with pytest.raises(cx.SheetError, match="not values"):
        patches_by_category(ds, by="domain", categories=["cars"])


def test_patches_bad_input():
    pos = grid_positions(10.0, 50.0)
    with pytest.raises(cx.errors.ParameterError, match=r"patches: stat must be one of \['t', 'dprime'\]; got 'z'"):
        patches(unit_map(np.zeros(25), pos), stat="z")
    with pytest.raises(cx.errors.ParameterError, match=r"sigma_mm must be in \[0, inf\)"):
        patches(unit_map(np.zeros(25), pos), sigma_mm=-1.0)
    with pytest.raises(ValueError, match="NaN"):
        patches(unit_map(np.full(25, np.nan), pos))
    with pytest.raises(cx.SheetError, match="x_mm"):
        patches(xr.DataArray(np.zeros(25), dims="unit"))
    with pytest.raises(cx.SheetError, match="one value per unit"):
        patches(np.zeros(24), positions=pos)
    with pytest.raises(cx.SheetError, match="dims"):
        patches(xr.DataArray(np.zeros((5, 25)), dims=("category", "unit")))
    with pytest.raises(cx.SheetError, match="evenly spaced"):
        patches(xr.DataArray(np.zeros((3, 3)), dims=("y_mm", "x_mm"), coords={"y_mm": [0, 1, 3], "x_mm": [0, 1, 2]}))
