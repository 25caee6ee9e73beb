"""cortexsim.grid: the one raster routine (ds.cortex.map, patches, figures, export)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import cortexsim as cx
from cortexsim.grid import Grid, rasterize, resample, sample, smooth_nan


def _per_unit(values, pos):
    coords = {"x_mm": ("unit", pos[:, 0]), "y_mm": ("unit", pos[:, 1])}
    if pos.shape[1] == 3:
        coords["z_mm"] = ("unit", pos[:, 2])
    return xr.DataArray(values, dims="unit", coords=coords, name="v", attrs={"units": "a.u."})


def _square(n, spacing):
    x, y = np.meshgrid(np.arange(n) * spacing, np.arange(n) * spacing)
    return np.c_[x.ravel(), y.ravel()] + 0.3


def test_unit_past_the_last_bin_edge_is_counted():
    # The old ds.cortex.map made 4 pixels for x = 0..3.6 at 1 mm and dropped the unit at 3.6 (past 3.5).
    x = np.array([0.0, 1.0, 2.0, 3.6, 0.0, 3.6])
    y = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 1.0])
    ds = cx.make_sheet(np.ones((2, 6), np.float32), x_mm=x, y_mm=y)
    count = ds.cortex.map(np.ones(6), resolution_mm=1.0, statistic="count")
    assert count.shape == (2, 5) and count.values.sum() == 6
    np.testing.assert_allclose(count.x_mm, [0, 1, 2, 3, 4])
    assert count.sel(x_mm=4.0, y_mm=0.0) == 1  # 3.6 mm lies in [3.5, 4.5)
    mean = ds.cortex.map(np.arange(6.0), resolution_mm=1.0)
    assert mean.sel(x_mm=4.0, y_mm=1.0) == 5.0


@pytest.mark.parametrize("seed, ndim", [(0, 2), (1, 2), (2, 3)])
def test_every_unit_in_exactly_one_pixel_within_half_a_pixel(seed, ndim):
    rng = np.random.default_rng(seed)
    pos = rng.uniform(-7, 13, size=(500, ndim))
    res = float(rng.uniform(0.3, 2.0))
    count = rasterize(np.ones(len(pos)), pos, resolution_mm=res, statistic="count")
    assert count.values.sum() == len(pos) and count.attrs["n_outside"] == 0
    grid = Grid.of(count)
    flat = grid.flat_index(pos)
    assert (flat >= 0).all()
    centres = grid.centres()[flat]
    assert np.abs(centres - pos).max() <= res / 2 + 1e-12
    # the affine maps the pixel index to the same centre
    idx = grid.index(pos)
    homog = np.c_[idx, np.zeros((len(pos), 3 - ndim)), np.ones(len(pos))]
    np.testing.assert_allclose((grid.affine @ homog.T).T[:, :ndim], centres)
    # each unit's own value comes back from its pixel when units are alone in it
    ids = rasterize(np.arange(len(pos), dtype=float), pos, resolution_mm=res, statistic="max")
    alone = count.values.ravel()[flat] == 1
    np.testing.assert_array_equal(sample(ids, pos)[alone], np.arange(len(pos))[alone])


def test_regular_grid_maps_one_unit_per_pixel():
    pos = _square(12, 0.7)  # 12 × 12 sheet, 0.7 mm spacing
    img = rasterize(np.ones(len(pos)), pos, statistic="count")
    assert img.attrs["resolution_mm"] == pytest.approx(0.7)
    assert img.shape == (12, 12) and (img.values == 1).all()
    vol = rasterize(np.ones(len(pos)), np.c_[pos, np.zeros(len(pos))], statistic="count")  # flat 3-D
    assert vol.dims == ("z_mm", "y_mm", "x_mm") and vol.shape == (1, 12, 12) and (vol.values == 1).all()


def test_affine_and_coords_agree_2d_and_3d():
    g2 = Grid((1.5, -2.0), 0.5, (4, 3))
    x, y = g2.axes()
    a = g2.affine
    np.testing.assert_allclose(a @ [3, 2, 0, 1], [x[3], y[2], 0.0, 1.0])
    g3 = Grid((0.0, 1.0, 2.0), 2.0, (2, 3, 4))
    np.testing.assert_allclose(g3.affine @ [1, 2, 3, 1], [2.0, 5.0, 8.0, 1.0])
    img = g3.dataarray(np.zeros(g3.array_shape))
    assert img.dims == ("z_mm", "y_mm", "x_mm") and img.shape == (4, 3, 2)
    assert Grid.of(img) == g3
    assert Grid.from_affine(g3.affine, g3.shape) == g3


def test_statistics_match_pandas_groupby():
    rng = np.random.default_rng(3)
    pos = rng.uniform(0, 5, size=(400, 2))
    v = rng.normal(size=400).round(1)
    v[::17] = np.nan
    grid = Grid.covering(pos, 1.0)
    pix = grid.flat_index(pos)
    frame = pd.DataFrame({"pix": pix, "v": v}).dropna()
    for stat, fn in [("mean", "mean"), ("median", "median"), ("sum", "sum"), ("min", "min"), ("max", "max"),
                     ("std", lambda s: s.std(ddof=0))]:
        img = rasterize(v, pos, grid=grid, statistic=stat).values.ravel()
        want = frame.groupby("pix")["v"].agg(fn)
        np.testing.assert_allclose(img[want.index], want.to_numpy(), atol=1e-12, err_msg=stat)
        assert np.isnan(np.delete(img, want.index)).all()
    labels = rng.integers(0, 3, 400).astype(float)
    mode = rasterize(labels, pos, grid=grid, statistic="mode").values.ravel()
    for p, group in pd.DataFrame({"pix": pix, "v": labels}).groupby("pix")["v"]:
        counts = group.value_counts()
        assert mode[p] == counts[counts == counts.max()].index.min()


def test_complex_origin_and_explicit_grid():
    pos = np.array([[0.2, 0.1], [0.9, 0.4], [2.1, 1.0]])
    z = np.exp(1j * np.array([0.0, np.pi / 2, np.pi]))
    img = rasterize(z, pos, resolution_mm=1.0, origin_mm=(0.5, 0.5))
    np.testing.assert_allclose(img.x_mm, [0.5, 1.5, 2.5])  # anchored on the given pixel centre
    np.testing.assert_allclose(img.values[0, 0], (z[0] + z[1]) / 2)
    small = Grid((0.0, 0.0), 1.0, (2, 1))
    part = rasterize(np.ones(3), pos, grid=small, statistic="count")
    assert part.attrs["n_units"] == 2 and part.attrs["n_outside"] == 1
    with pytest.raises(cx.SheetError, match="one value per unit"):
        rasterize(np.ones(2), pos)
    with pytest.raises(cx.SheetError, match="encode labels"):
        rasterize(np.array(["a", "b", "c"]), pos)
    with pytest.raises(ValueError, match="too large"):
        rasterize(np.ones(3), pos * 1e4, resolution_mm=1e-3)


def test_dataarray_input_keeps_name_units_and_positions():
    pos = _square(4, 1.0)
    img = rasterize(_per_unit(np.arange(16.0), pos))
    assert img.name == "v" and img.attrs["units"] == "a.u."
    np.testing.assert_array_equal(img.values, np.arange(16.0).reshape(4, 4))


def test_resample_methods():
    rng = np.random.default_rng(4)
    pos = rng.uniform(0, 10, size=(3000, 2))
    f = 2.0 * pos[:, 0] - pos[:, 1] + 3.0
    grid = Grid((1.0, 1.0), 0.5, (17, 17))  # well inside the sheet
    c = grid.centres()
    truth = 2.0 * c[:, 0] - c[:, 1] + 3.0
    np.testing.assert_allclose(resample(f, pos, grid, "linear"), truth, atol=1e-9)  # exact for a plane
    near = resample(f, pos, grid, "nearest")
    assert np.abs(near - truth).max() < 2.0  # nearest unit lies < ~0.6 mm away, slope ≤ √5
    # Gaussian-weighted mean of a plane is the plane (symmetric kernel, dense units); of a constant, the constant
    gauss = resample(np.c_[f, np.full(len(f), 7.0)], pos, grid, "gaussian", fwhm_mm=1.0)
    np.testing.assert_allclose(gauss[:, 1], 7.0)
    assert np.abs(gauss[:, 0] - truth).max() < 0.3
    # pixels far from any unit are masked
    out = Grid((-5.0, -5.0), 1.0, (3, 3))
    assert np.isnan(resample(f, pos, out, "nearest")).all()
    assert np.isfinite(resample(f, pos, out, "nearest", mask=None)).all()


def test_smooth_nan_ignores_missing_pixels():
    img = np.full((9, 9), 3.0)
    img[::2, ::3] = np.nan
    out, _ = smooth_nan(img, 1.5)
    np.testing.assert_allclose(out, 3.0)  # a constant stays constant whatever is missing
