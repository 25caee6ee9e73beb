"""cortexsim.plotting.plot_comparison: the brain-map comparison figure composes (ax=, output_file=) and shows the table."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.image import imread

from cortexsim import compare, plotting
from cortexsim.errors import ParameterError, SheetError
from cortexsim.grid import Grid
from cortexsim.plotting.compare import BOTH_RGB, MODEL_RGB, TARGET_RGB, overlap_rgb

CENTRES = np.array([[5.0, 5.0], [15.0, 6.0], [8.0, 15.0]])


def _map(values, pos, name="dprime"):
    return xr.DataArray(values, dims="unit", coords={"x_mm": ("unit", pos[:, 0]), "y_mm": ("unit", pos[:, 1])},
                        name=name)


@pytest.fixture(scope="module")
def table():
    g = np.stack(np.meshgrid(np.arange(20.0), np.arange(20.0), indexing="ij"), -1).reshape(-1, 2)
    pos = g + np.random.default_rng(0).uniform(-0.25, 0.25, g.shape)
    d2 = ((pos[:, None] - CENTRES[None]) ** 2).sum(-1)
    model = np.exp(-d2 / 8.0).sum(1) * 3
    target = model + np.random.default_rng(1).normal(0, 0.3, len(pos))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the coarser-grid notice
        return compare.compare_maps(_map(model, pos), _map(target, pos), n_perm=20, threshold=1.0)


def test_overlap_colours_by_hand():
    model = np.array([[True, False], [True, False]])
    target = np.array([[True, True], [False, False]])
    defined = np.array([[True, True], [True, False]])
    rgb = overlap_rgb(model, target, defined)
    assert np.allclose(rgb[0, 0], BOTH_RGB) and np.allclose(rgb[0, 1], TARGET_RGB) and np.allclose(rgb[1, 0], MODEL_RGB)
    assert np.allclose(rgb[1, 1], 1.0)  # not defined in both maps: white
    assert np.allclose(overlap_rgb(np.zeros((1, 1), bool), np.zeros((1, 1), bool), np.ones((1, 1), bool)), 0.85)


def test_panels_show_the_table_and_draw_into_given_axes(table, tmp_path):
    fig = Figure(figsize=(12, 3))
    given = fig.subplots(1, 4)
    axes = plotting.plot_comparison(table, ax=given)
    assert axes.shape == (1, 4) and all(a is b for a, b in zip(axes.ravel(), given))
    assert list(tmp_path.iterdir()) == []  # nothing written without output_file
    shown = np.ma.filled(axes[0, 0].images[0].get_array().astype(float), np.nan)
    assert np.allclose(shown, table.attrs["model_images"][0], equal_nan=True)
    g = table.attrs["grid"]
    grid = Grid(tuple(g["origin_mm"]), float(g["resolution_mm"]), tuple(g["shape"]))
    assert axes[0, 0].images[0].get_extent() == pytest.approx(grid.extent())
    mp = compare.threshold_patches(table.attrs["model_images"][0], grid, table.model_threshold.iloc[0])["mask"]
    tp = compare.threshold_patches(table.attrs["target_images"][0], grid, table.target_threshold.iloc[0])["mask"]
    rgb = axes[0, 2].images[0].get_array()
    assert np.allclose(rgb[mp & tp], BOTH_RGB) and (mp & tp).sum() > 10  # the planted patches overlap
    assert f"Dice {table.dice.iloc[0]:.2f}" in axes[0, 2].get_title()
    assert axes[0, 3].lines[0].get_xdata()[0] == pytest.approx(table.pearson_r.iloc[0])
    counts = [p.get_height() for p in axes[0, 3].patches]
    assert sum(counts) == len(table.attrs["null_r"][0]) == 20  # one bar count per surrogate


def test_output_file_and_the_old_path(table, tmp_path):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    axes = plotting.plot_comparison(table, [tmp_path / "c.png", tmp_path / "c.svg"])
    assert plt.get_fignums() == before  # saved without a pyplot figure left open
    assert imread(tmp_path / "c.png")[..., :3].std() > 0.05 and b"<svg" in (tmp_path / "c.svg").read_bytes()[:400]
    assert axes[0, 3].get_xlabel() == "Pearson r"
    fig = compare.plot_comparison(table, tmp_path / "old.png")  # the old form returns the Figure
    assert isinstance(fig, Figure) and len([a for a in fig.axes if a.get_label() != "<colorbar>"]) == 4
    assert imread(tmp_path / "old.png").shape[0] > 200
    bare = table.copy()
    bare.attrs = {}
    with pytest.raises(SheetError, match="'grid' is missing"):
        plotting.plot_comparison(bare)
    with pytest.raises(ParameterError, match="draws 4 panel"):
        plotting.plot_comparison(table, ax=Figure().subplots(1, 2))
