"""Pinwheel detection on synthetic orientation maps with known pinwheels / known statistics."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import cortexsim as cx
from cortexsim.analysis.pinwheels import column_spacing, pinwheels, winding_numbers

CENTRES = [(2.13, 3.07), (6.61, 2.38), (4.42, 7.19), (7.9, 7.7)]
SIGNS = [1, -1, 1, -1]


def ori_map(theta, pos):
    return xr.DataArray(theta, dims="unit", coords={"x_mm": ("unit", pos[:, 0]), "y_mm": ("unit", pos[:, 1])},
                        name="preferred_orientation", attrs={"units": "deg"})


def planted(pos, centres=CENTRES, signs=SIGNS):
    """θ = ½ Σ s_k arg(r − r_k) in degrees, period 180."""
    phi = sum(s * np.arctan2(pos[:, 1] - c[1], pos[:, 0] - c[0]) for c, s in zip(centres, signs))
    return np.degrees(0.5 * phi) % 180.0


def grid_positions(step, size):
    g = np.arange(0, size, step)
    x, y = np.meshgrid(g, g)
    return np.c_[x.ravel(), y.ravel()]


def check_found(result, step, tol_steps=1.0):
    got = np.c_[result["pinwheel_x_mm"].values, result["pinwheel_y_mm"].values]
    assert int(result["count"]) == len(CENTRES)
    for (cx_, cy_), sign in zip(CENTRES, SIGNS):
        d = np.hypot(got[:, 0] - cx_, got[:, 1] - cy_)
        k = int(np.argmin(d))
        assert d[k] <= tol_steps * step
        assert int(result["charge"].values[k]) == sign


def test_planted_pinwheels_regular_grid():
    pos = grid_positions(0.25, 10.0)
    out = pinwheels(ori_map(planted(pos), pos))
    assert out.attrs["resampling"] == "bin" and out.attrs["resolution_mm"] == pytest.approx(0.25)
    check_found(out, 0.25)
    assert int(out["n_positive"]) == 2 and int(out["n_negative"]) == 2


def test_planted_pinwheels_jittered_irregular_sheet():
    rng = np.random.default_rng(0)
    pos = grid_positions(0.25, 10.0) + rng.uniform(-0.1, 0.1, (1600, 2))
    out = pinwheels(ori_map(planted(pos), pos), resolution_mm=0.25)
    assert out.attrs["resampling"] == "linear"
    check_found(out, 0.25)


def test_dataset_input_and_image_input():
    pos = grid_positions(0.25, 10.0)
    theta = ori_map(planted(pos), pos)
    ds = xr.Dataset({"preferred_orientation": theta, "osi": theta * 0 + 1})
    check_found(pinwheels(ds), 0.25)
    img = pinwheels(ds)["orientation_grid"]  # (y_mm, x_mm) image round trip
    check_found(pinwheels(img.rename("orientation")), 0.25)


def grf_orientation(seed, wavelength, size, step, n_waves=40):
    """Orientation map of a Gaussian random field with a ring spectrum |k| = 2π/Λ."""
    rng = np.random.default_rng(seed)
    ang = rng.uniform(0, 2 * np.pi, n_waves)
    k = 2 * np.pi / wavelength * np.c_[np.cos(ang), np.sin(ang)]
    amp = rng.normal(size=n_waves) + 1j * rng.normal(size=n_waves)
    pos = grid_positions(step, size)
    z = (np.exp(1j * pos @ k.T) * amp).sum(axis=1)
    return ori_map(np.degrees(np.angle(z) / 2) % 180, pos)


@pytest.mark.parametrize("seed", [0, 1])
def test_gaussian_random_field_spacing_and_density(seed):
    lam = 1.37
    out = pinwheels(grf_orientation(seed, lam, size=25.0, step=0.125))
    assert float(out["column_spacing_mm"]) == pytest.approx(lam, rel=0.10)
    assert float(out["density"]) == pytest.approx(np.pi, rel=0.30)
    assert int(out["count"]) > 500
    # pinwheel charges balance in a random field
    assert abs(int(out["n_positive"]) - int(out["n_negative"])) < 0.1 * int(out["count"])


def test_winding_numbers_hand_example():
    # phase rising by 90° per corner counter-clockwise: one full turn
    phase = np.array([[0.0, np.pi / 2], [-np.pi / 2, np.pi]])  # rows: y; corners (0,0),(1,0),(1,1),(0,1)
    assert winding_numbers(phase)[0, 0] == 1
    assert winding_numbers(-phase)[0, 0] == -1
    assert winding_numbers(np.zeros((2, 2)))[0, 0] == 0
    assert np.isnan(winding_numbers(np.array([[0.0, np.nan], [0.0, 0.0]]))[0, 0])


def test_column_spacing_of_a_plane_wave():
    x = np.arange(0, 30, 0.1)
    field = np.exp(2j * np.pi * x[None, :] / 2.5) * np.ones((300, 1))
    assert column_spacing(field, 0.1) == pytest.approx(2.5, rel=0.02)


def test_given_column_spacing_sets_density():
    pos = grid_positions(0.25, 10.0)
    out = pinwheels(ori_map(planted(pos), pos), column_spacing_mm=2.0)
    assert float(out["density"]) == pytest.approx(4 / (float(out["area_mm2"]) / 4.0))
    assert out["column_spacing_mm"].attrs["source"] == "given"


def test_pinwheels_bad_input():
    pos = grid_positions(1.0, 5.0)
    with pytest.raises(cx.SheetError, match="x_mm"):
        pinwheels(xr.DataArray(np.zeros(25), dims="unit"))
    sheet = cx.make_sheet(np.zeros((3, 25), np.float32), x_mm=pos[:, 0], y_mm=pos[:, 1])
    with pytest.raises(cx.SheetError, match="orientation_map"):
        pinwheels(sheet)
    with pytest.raises(ValueError, match="fewer than 4"):
        pinwheels(ori_map(np.full(25, np.nan), pos))
    with pytest.raises(cx.SheetError, match="dims"):
        pinwheels(xr.DataArray(np.zeros((2, 25)), dims=("a", "unit")))
    with pytest.raises(TypeError, match="DataArray or Dataset"):
        pinwheels(np.zeros(25))


def test_plot_orientation_map_draws_the_pinwheels_result(tmp_path):
    """pinwheels() output names (pinwheel_x_mm / pinwheel_y_mm) are what plot_orientation_map reads."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cortexsim import plotting

    pos = grid_positions(0.25, 10.0)
    theta = ori_map(planted(pos), pos).rename("preferred_orientation_deg")
    theta = theta.assign_coords(area=("unit", np.full(len(pos), "V1")))
    found = pinwheels(theta)
    check_found(found, 0.25)
    ax = plotting.plot_orientation_map(xr.Dataset({"preferred_orientation_deg": theta}), pinwheels=found,
                                       output_file=tmp_path / "ori.png")
    try:
        drawn = ax.lines[0].get_xydata()
        np.testing.assert_array_equal(drawn, np.c_[found["pinwheel_x_mm"].values, found["pinwheel_y_mm"].values])
        assert len(drawn) == len(CENTRES)  # the 4 planted pinwheels, at the detected plaquette centres
    finally:
        plt.close(ax.figure)
    assert (tmp_path / "ori.png").stat().st_size > 1000
