"""cortexsim.plotting composes: ax= / figure=, returns Axes, writes files only with output_file=."""
from __future__ import annotations

import subprocess
import sys

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr

import cortexsim as cx
from cortexsim import analysis, plotting
from cortexsim.errors import ParameterError

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _sheet(areas=("IT",), side=8):
    rng = np.random.default_rng(0)
    row, col = np.divmod(np.arange(side * side), side)
    n = len(areas)
    r = rng.normal(size=(12, n * side * side))
    r[:4, : side * side][:, row < 4] += 4.0
    return cx.make_sheet(r.astype(np.float32), x_mm=np.tile(col * 1.0, n), y_mm=np.tile(row * 1.0, n),
                         row=np.tile(row, n), col=np.tile(col, n), area=np.repeat(list(areas), side * side),
                         stimuli={"domain": np.repeat(["faces", "objects", "places"], 4)})


def test_two_plots_share_one_figure_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ds = _sheet()
    pref = analysis.preference_map(ds, by="domain")
    ci = analysis.clustering_index(pref, n_perm=5, seed=0)
    fig, (a, b) = plt.subplots(1, 2)
    try:
        assert plotting.plot_preference_map(pref, ax=a) is a
        assert plotting.plot_clustering_null(ci, ax=b) is b
        assert len(a.images) == 1 and "preferred domain" in a.get_title()
        assert [p.get_height() for p in b.patches if p.get_height() > 0] and b.lines[0].get_xdata()[0] == float(ci["observed"])
        assert list(tmp_path.iterdir()) == []
    finally:
        plt.close(fig)


def test_output_file_writes_each_format_without_a_pyplot_figure(tmp_path):
    d = analysis.dprime(_sheet(), by="domain", target="faces")
    before = plt.get_fignums()
    ax = plotting.plot_dprime_map(d, output_file=[tmp_path / "d.png", tmp_path / "d.svg"])
    assert plt.get_fignums() == before  # a bare Figure: scripts drawing many leak nothing
    assert (tmp_path / "d.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (tmp_path / "d.svg").read_text()[:500]
    img = ax.images[0].get_array()
    assert np.nanmax(img) == pytest.approx(float(d.max()))  # one unit per pixel on the regular grid
    with pytest.raises(ParameterError, match="suffix names the format"):
        plotting.plot_dprime_map(d, output_file=tmp_path / "d.bmpx")


def test_without_ax_or_output_file_a_pyplot_figure_is_made():
    d = analysis.dprime(_sheet(), by="domain", target="faces")
    ax = plotting.plot_dprime_map(d)
    try:
        assert ax.figure.number in plt.get_fignums()  # shows in a notebook / plt.show()
    finally:
        plt.close(ax.figure)


def test_several_areas_need_one_axes_each():
    ds = _sheet(("V1", "IT"))
    d = analysis.dprime(ds, by="domain", target="faces")
    fig, axes = plt.subplots(1, 2)
    try:
        out = plotting.plot_dprime_map(d, ax=axes)
        assert list(out) == list(axes) and [a.get_title().split(" — ")[-1] for a in axes] == ["V1", "IT"]
        with pytest.raises(ParameterError, match="draws 2 panel"):
            plotting.plot_dprime_map(d, ax=axes[0])
    finally:
        plt.close(fig)


def test_orientation_map_reads_the_pinwheels_result():
    pw = xr.Dataset({"pinwheel_x_mm": ("pinwheel", [1.0, 3.0]), "pinwheel_y_mm": ("pinwheel", [2.0, 4.0])})
    ds = _sheet()
    theta = xr.DataArray(np.linspace(0, 179, ds.sizes["unit"]), dims="unit",
                         coords={c: ds[c] for c in ("x_mm", "y_mm", "area")}, name="preferred_orientation_deg")
    ax = plotting.plot_orientation_map(theta, pinwheels=pw, output_file=None)
    try:
        np.testing.assert_array_equal(ax.lines[0].get_xydata(), [[1.0, 2.0], [3.0, 4.0]])
    finally:
        plt.close(ax.figure)


def test_old_analysis_plot_names_warn_and_still_write(tmp_path):
    d = analysis.dprime(_sheet(), by="domain", target="faces")
    with pytest.warns(DeprecationWarning, match="cortexsim.plotting.plot_dprime_map"):
        paths = analysis.plot_dprime_map(d, tmp_path / "old", formats=("png",))
    assert [p.name for p in paths] == ["old.png"] and paths[0].stat().st_size > 1000


def test_analyses_without_figures_never_import_matplotlib(tmp_path):
    code = (
        "import sys, numpy as np, cortexsim as cx\n"
        "from cortexsim import analysis\n"
        "r = np.random.default_rng(0).normal(size=(6, 16)).astype('float32')\n"
        "row, col = np.divmod(np.arange(16), 4)\n"
        "ds = cx.make_sheet(r, x_mm=col*1.0, y_mm=row*1.0, row=row, col=col, area=np.repeat('IT', 16),"
        " stimuli={'domain': np.repeat(['a', 'b'], 3)})\n"
        f"analysis.run(ds, 'selectivity,preference,clustering,graph,smoothness', n_perm=2).save(r'{tmp_path}', formats=())\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={"MPLBACKEND": "Agg", "PATH": ""})
    assert matplotlib  # the test module itself may import it
