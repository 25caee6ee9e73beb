"""`cortexsim analyze` run in-process: summary JSON vs the Python API, figures, per-unit maps, errors."""
from __future__ import annotations

import argparse
import itertools
import json

import matplotlib.image as mpimg
import networkx as nx
import numpy as np
import pytest
import xarray as xr

import cortexsim as cx
from cortexsim import analysis
from cortexsim.analysis.cli import add_parser, main

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.fixture
def sheet_file(tmp_path):
    """Two areas on 16×16 grids; IT has a face quadrant and an object half."""
    rng = np.random.default_rng(0)
    side = 16
    row, col = np.divmod(np.arange(side * side), side)
    dom = np.repeat(["faces", "objects", "places"], 8)
    r = rng.normal(size=(24, 2 * side * side))
    r[:8, : side * side][:, (row < 8) & (col < 8)] += 3.0
    r[8:16, : side * side][:, row >= 8] += 3.0
    ds = cx.make_sheet(r.astype(np.float32), x_mm=np.tile(col * 1.0, 2), y_mm=np.tile(row * 1.0, 2),
                       row=np.tile(row, 2), col=np.tile(col, 2), area=np.repeat(["IT", "V4"], side * side),
                       stimuli={"domain": dom})
    return cx.save_sheet(ds, tmp_path / "sheet.h5"), ds


def test_add_parser_registers_run(tmp_path):
    parser = argparse.ArgumentParser(prog="cortexsim")
    sub = parser.add_subparsers(dest="command")
    p = add_parser(sub)
    args = parser.parse_args(["analyze", "x.h5", "--out", str(tmp_path)])
    assert args.func.__name__ == "run" and args.what == "selectivity,preference,clustering" and args.by == "domain"
    assert "summary.json" in p.description


def test_analyze_summary_matches_python_api(sheet_file, tmp_path):
    path, ds = sheet_file
    out = tmp_path / "out"
    code = main([str(path), "--what", "selectivity,preference,clustering,graph", "--target", "faces",
                 "--n-perm", "7", "--seed", "3", "--out", str(out)])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["areas"]) == {"IT", "V4"} and summary["n_units"] == 512
    it = ds.cortex.area("IT")
    d = analysis.dprime(it, by="domain", target="faces")
    s = summary["areas"]["IT"]
    assert s["selectivity"]["dprime"]["max"] == pytest.approx(float(d.max()))
    assert s["selectivity"]["dprime"]["mean"] == pytest.approx(float(d.mean()))
    assert s["selectivity"]["n_dprime_above_threshold"] == int((d > 2).sum())
    t = analysis.tstat(it, by="domain", target="faces")
    assert s["selectivity"]["t"]["min"] == pytest.approx(float(t.min()))
    pref = analysis.preference_map(it, by="domain")
    labels, counts = np.unique(pref.values, return_counts=True)
    assert s["preference"]["counts"] == dict(zip(labels.tolist(), counts.tolist()))
    ci = analysis.clustering_index(pref, n_perm=7, seed=3)
    assert s["clustering"]["index"] == pytest.approx(float(ci["index"]))
    assert s["clustering"]["null"] == pytest.approx(ci["null"].values.tolist())
    assert s["clustering"]["attrs"]["adjacency"] == "grid8"  # default connectivity 8 (the reference's OpenCV default)
    assert s["graph"]["modularity"] == pytest.approx(
        analysis.preference_modularity(analysis.neighbour_graph(it, values=pref, connectivity=8)))
    # files: figures per area as PNG + SVG, graph, per-unit maps
    for name in ("dprime", "preference", "clustering_null"):
        assert f"IT_{name}.png" in summary["figures"] and (out / f"IT_{name}.svg").exists()
    # V4 is pure noise: no preferring unit, so its clustering index is recorded as an error, not a crash
    assert "no unit has a preference" in summary["areas"]["V4"]["clustering"]["error"]
    assert "V4_preference.png" in summary["figures"] and "V4_clustering_null.png" not in summary["figures"]
    img = mpimg.imread(out / "IT_preference.png")
    assert img.shape[0] > 100 and img.reshape(-1, img.shape[-1]).std(axis=0).max() > 0.05
    G = nx.read_graphml(out / "IT_graph.graphml", node_type=int)
    assert G.number_of_nodes() == 256
    units = xr.open_dataset(out / "units_IT.nc", engine="h5netcdf")
    np.testing.assert_allclose(units["dprime"].values, d.values, rtol=1e-12)
    np.testing.assert_array_equal(units["preference"].values.astype(str), pref.values)
    np.testing.assert_array_equal(units["x_mm"].values, d["x_mm"].values)
    units.close()


def test_analyze_all_skips_what_the_sheet_cannot_do(sheet_file, tmp_path):
    path, _ = sheet_file
    out = tmp_path / "all"
    assert main([str(path), "--what", "all", "--area", "IT", "--n-perm", "3", "--formats", "", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["areas"]) == ["IT"]
    assert "orientation" in summary["skipped"] and "numerosity" in summary["skipped"]["numbers"]
    assert summary["figures"] == []
    # without a target, selectivity reports every category vs the rest
    assert set(summary["areas"]["IT"]["selectivity"]) == {"faces", "objects", "places"}


def test_analyze_orientation_and_numbers(tmp_path):
    rng = np.random.default_rng(1)
    side = 8
    row, col = np.divmod(np.arange(side * side), side)
    g = np.array(list(itertools.product(np.arange(8) * 22.5, [1.0, 2.0], [0.0, 180.0])))
    theta = (col * 22.5) % 180
    r = np.exp(2 * (np.cos(np.deg2rad(2 * (g[:, :1] - theta))) - 1)) + rng.normal(scale=0.01, size=(len(g), 64))
    ds = cx.make_sheet(r.astype(np.float32), x_mm=col * 1.0, y_mm=row * 1.0, row=row, col=col, area="V1",
                       stimuli={"orientation_deg": g[:, 0], "sf_cpd": g[:, 1], "phase": g[:, 2]})
    path = cx.save_sheet(ds, tmp_path / "g.h5")
    out = tmp_path / "o"
    assert main([str(path), "--what", "orientation", "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())["areas"]["V1"]["orientation"]
    ori = analysis.orientation_map(ds)
    assert s["osi"]["mean"] == pytest.approx(float(ori["osi"].mean()))
    assert (out / "V1_orientation.png").exists()
    units = xr.open_dataset(out / "units_V1.nc", engine="h5netcdf")
    err = np.abs((units["preferred_orientation_deg"].values - theta + 90) % 180 - 90)
    assert err.max() < 1.0
    units.close()

    nums = np.repeat(np.arange(1, 7), 4)
    pref = col % 6 + 1
    rn = np.exp(-((nums[:, None] - pref[None]) ** 2) / 2.0) + rng.normal(scale=0.02, size=(24, 64))
    nds = cx.make_sheet(rn, x_mm=col * 1.0, y_mm=row * 1.0, row=row, col=col, area="IPS", stimuli={"numerosity": nums})
    npath = cx.save_sheet(nds, tmp_path / "n.h5")
    assert main([str(npath), "--what", "numbers,topography", "--n-perm", "5", "--out", str(tmp_path / "n")]) == 0
    sn = json.loads((tmp_path / "n" / "summary.json").read_text())["areas"]["IPS"]
    tm = analysis.topography_index(analysis.number_map(nds), n_perm=5)
    assert sn["topography"]["index"] == pytest.approx(float(tm["index"])) and sn["topography"]["index"] > 0
    assert sn["numbers"]["n_selective"] == 64
    for name in ("preferred_numerosity", "number_tuning"):
        assert (tmp_path / "n" / f"IPS_{name}.png").exists() and (tmp_path / "n" / f"IPS_{name}.svg").exists()


def test_analyze_errors_exit_2_with_message(sheet_file, tmp_path, capsys):
    path, _ = sheet_file
    assert main([str(path), "--what", "orientation", "--out", str(tmp_path / "e")]) == 2
    assert "no stimulus coord 'orientation_deg'" in capsys.readouterr().err
    assert main([str(path), "--what", "selectivity", "--target", "cars", "--out", str(tmp_path / "e")]) == 2
    assert "'cars' is not a value" in capsys.readouterr().err
    assert main([str(path), "--what", "sparkles", "--out", str(tmp_path / "e")]) == 2
    assert "unknown analyses ['sparkles']" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.h5"), "--out", str(tmp_path / "e")]) == 2
    assert "no Sheet file" in capsys.readouterr().err
