"""Neighbourhood graphs (networkx): adjacency, preference subgraphs, modularity, GraphML; figures."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import matplotlib.image as mpimg
import networkx as nx
import numpy as np
import pytest
import xarray as xr

import cortexsim as cx
from cortexsim import analysis


def _grid_sheet(side=6, labels=None):
    row, col = np.divmod(np.arange(side * side), side)
    rng = np.random.default_rng(0)
    ds = cx.make_sheet(rng.normal(size=(4, side * side)), x_mm=col * 0.5, y_mm=row * 0.5, row=row, col=col,
                       area="IT", layer="fc", unit_id=100 + np.arange(side * side),
                       stimuli={"domain": ["a", "a", "b", "b"]})
    return ds


def test_grid_adjacency_counts_and_distances():
    ds = _grid_sheet(6)
    g4 = analysis.neighbour_graph(ds)
    assert g4.graph["adjacency"] == "grid4"
    assert g4.number_of_nodes() == 36 and g4.number_of_edges() == 2 * 6 * 5
    g8 = analysis.neighbour_graph(ds, connectivity=8)
    assert g8.number_of_edges() == 2 * 6 * 5 + 2 * 5 * 5
    # corner unit 100 (row 0, col 0): neighbours 101, 106 (4-conn) + 107 diagonally
    assert set(g4[100]) == {101, 106} and set(g8[100]) == {101, 106, 107}
    assert g8[100][107]["distance_mm"] == pytest.approx(0.5 * np.sqrt(2))
    node = g4.nodes[107]
    assert node["row"] == 1 and node["col"] == 1 and node["area"] == "IT" and node["x_mm"] == 0.5


def test_radius_and_knn_match_brute_force():
    rng = np.random.default_rng(1)
    pos = rng.uniform(0, 10, size=(60, 2))
    ds = cx.make_sheet(rng.normal(size=(3, 60)), x_mm=pos[:, 0], y_mm=pos[:, 1])
    d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    g = analysis.neighbour_graph(ds, radius_mm=1.5)
    expect = {(i, j) for i in range(60) for j in range(i + 1, 60) if d[i, j] < 1.5}
    assert {tuple(sorted(e)) for e in g.edges} == expect
    gk = analysis.neighbour_graph(ds, k=3)
    nearest = np.argsort(d, axis=1)[:, 1:4]
    expect_k = {tuple(sorted((i, int(j)))) for i in range(60) for j in nearest[i]}
    assert {tuple(sorted(e)) for e in gk.edges} == expect_k
    assert gk.graph == {"adjacency": "knn", "k": 3}
    with pytest.raises(cx.SheetError, match="not on a regular grid"):
        analysis.neighbour_graph(ds, grid=True)
    with pytest.raises(ValueError, match="radius_mm or k, not both"):
        analysis.neighbour_graph(ds, radius_mm=1.0, k=2)


def test_same_preference_subgraph_components_and_modularity():
    ds = _grid_sheet(6)
    col = ds["col"].values
    labels = np.where(col < 3, "faces", "places")
    labels[[0, 35]] = "none"
    pref = xr.DataArray(labels, dims="unit", coords={"unit_id": ("unit", ds["unit_id"].values)}, name="preference")
    G = analysis.neighbour_graph(ds, values=pref)
    H = analysis.same_preference_subgraph(G)
    assert H.number_of_nodes() == 34
    assert all(H.nodes[u]["preference"] == H.nodes[v]["preference"] for u, v in H.edges)
    comps = analysis.component_sizes(G)
    assert sorted(comps["size"].values.tolist()) == [17, 17]
    assert set(comps["preference"].values.tolist()) == {"faces", "places"}
    # modularity equals networkx's on the same partition of the preferring units
    keep = [n for n in G if G.nodes[n]["preference"] != "none"]
    parts = [{n for n in keep if G.nodes[n]["preference"] == c} for c in ("faces", "places")]
    q = analysis.preference_modularity(G)
    assert q == pytest.approx(nx.algorithms.community.modularity(G.subgraph(keep), parts))
    assert q > 0.3  # two halves joined by a 6-edge border
    # a checkerboard is anti-modular
    checker = np.where((ds["row"].values + col) % 2 == 0, "a", "b")
    assert analysis.preference_modularity(G, dict(zip(ds["unit_id"].values.tolist(), checker))) < 0
    with pytest.raises(cx.SheetError, match="pass pref="):
        analysis.component_sizes(analysis.neighbour_graph(ds))


def test_graphml_round_trip(tmp_path):
    ds = _grid_sheet(4)
    d = analysis.dprime(ds, target="a")
    G = analysis.neighbour_graph(ds, connectivity=8, values={"dprime": d, "preference": np.array(["x"] * 16)})
    path = analysis.write_graphml(G, tmp_path / "g.graphml")
    back = nx.read_graphml(path, node_type=int)
    assert back.number_of_nodes() == 16 and back.number_of_edges() == G.number_of_edges()
    assert back.nodes[105]["dprime"] == pytest.approx(float(d.sel(unit=5)))
    assert back.nodes[105]["area"] == "IT" and back.graph["adjacency"] == "grid8"
    assert back[100][105]["distance_mm"] == pytest.approx(0.5 * np.sqrt(2))


def _check_png(path, min_colours=3):
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    flat = img.reshape(-1, img.shape[-1])
    assert len(np.unique(flat, axis=0)) >= min_colours  # not a blank image
    return img


def _check_svg(path):
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")


def test_figures_are_valid_images(tmp_path):
    side = 16
    row, col = np.divmod(np.arange(side * side), side)
    labels = np.array(["faces", "places", "none"])[(col // 6).clip(0, 2)]
    pref = xr.DataArray(labels, dims="unit", coords={"x_mm": ("unit", col * 1.0), "y_mm": ("unit", row * 1.0),
                                                    "row": ("unit", row), "col": ("unit", col),
                                                    "area": ("unit", np.full(side * side, "IT")),
                                                    "unit_id": ("unit", np.arange(side * side))},
                        attrs={"classes": ["faces", "places"], "by": "domain"})
    paths = analysis.plot_preference_map(pref, tmp_path / "pref")
    assert [p.suffix for p in paths] == [".png", ".svg"]
    img = _check_png(paths[0])
    # "none" units are drawn white: the map's right third has pure white pixels, the left a colour
    assert (img[..., :3] == 1.0).all(axis=-1).any()
    _check_svg(paths[1])

    d = pref.copy(data=np.linspace(-3, 3, side * side)).rename("dprime")
    _check_png(analysis.plot_dprime_map(d, tmp_path / "d.png")[0], min_colours=20)
    ori = pref.copy(data=(col * 11.25) % 180).rename("preferred_orientation_deg")
    p_ori = analysis.plot_orientation_map(ori, tmp_path / "ori", pinwheels=np.array([[3.0, 4.0]]))
    _check_png(p_ori[0], min_colours=10)
    _check_svg(p_ori[1])
    ci = analysis.clustering_index(pref, n_perm=10)
    _check_png(analysis.plot_clustering_null(ci, tmp_path / "null", formats=("png",))[0])
    with pytest.raises(cx.SheetError, match="per-unit DataArray"):
        analysis.plot_dprime_map(xr.DataArray(np.zeros((2, 3)), dims=("category", "unit")), tmp_path / "x")
