"""Reset clustering and topography indices: known answers, slow reference implementations, errors."""
from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import xarray as xr

import cortexsim as cx
from cortexsim import analysis
from cortexsim.analysis.clustering import _components_graph, _components_grid, _grid_image
from cortexsim.analysis.graphs import grid_edges

SIDE = 32


def _grid_map(labels, side=SIDE, attrs=None):
    row, col = np.divmod(np.arange(side * side), side)
    return xr.DataArray(
        np.asarray(labels),
        dims="unit",
        coords={"row": ("unit", row), "col": ("unit", col), "x_mm": ("unit", col * 1.0),
                "y_mm": ("unit", row * 1.0), "unit_id": ("unit", np.arange(side * side))},
        name="preference",
        attrs=attrs or {},
    )


def _quadrants(side=SIDE):
    row, col = np.divmod(np.arange(side * side), side)
    return np.array(["faces", "bodies", "places", "objects"])[(row // (side // 2)) * 2 + col // (side // 2)]


def _slow_mean_component_size(img, none="none", connectivity=8):
    """Obviously-correct reference: BFS flood fill (8 or 4 neighbours), mean over classes of mean size."""
    steps = [(1, 0), (-1, 0), (0, 1), (0, -1)] + ([(1, 1), (1, -1), (-1, 1), (-1, -1)] if connectivity == 8 else [])
    h, w = img.shape
    seen = np.zeros_like(img, dtype=bool)
    sizes: dict[str, list[int]] = {}
    for r0 in range(h):
        for c0 in range(w):
            lab = img[r0, c0]
            if seen[r0, c0] or lab == none:
                continue
            queue, n = deque([(r0, c0)]), 0
            seen[r0, c0] = True
            while queue:
                r, c = queue.popleft()
                n += 1
                for dr, dc in steps:
                    rr, cc = r + dr, c + dc
                    if 0 <= rr < h and 0 <= cc < w and not seen[rr, cc] and img[rr, cc] == lab:
                        seen[rr, cc] = True
                        queue.append((rr, cc))
            sizes.setdefault(lab, []).append(n)
    return np.mean([np.mean(v) for v in sizes.values()])


def _slow_topography(ranks, n, none=-1):
    """Reference T_M: loop over units and their 8 neighbours (paper, supplementary S1)."""
    h, w = ranks.shape
    vals = []
    for r in range(h):
        for c in range(w):
            if ranks[r, c] == none:
                continue
            diffs = [abs(ranks[r, c] - ranks[rr, cc]) for rr in range(r - 1, r + 2) for cc in range(c - 1, c + 2)
                     if (rr, cc) != (r, c) and 0 <= rr < h and 0 <= cc < w and ranks[rr, cc] != none]
            if diffs:
                vals.append(n - np.mean(diffs))
    return np.mean(vals)


def test_quadrants_give_large_index_random_map_near_zero():
    ci = analysis.clustering_index(_grid_map(_quadrants()), n_perm=20, seed=0)
    assert ci["observed"].item() == 256.0  # one 16×16 component per class
    np.testing.assert_array_equal(ci["n_components"].values, [1, 1, 1, 1])
    assert ci["null"].shape == (20,)
    # the control is the plain mean over all permutations (no halving)
    assert ci["null_mean"].item() == pytest.approx(ci["null"].values.mean())
    assert ci["index"].item() == pytest.approx(256.0 - ci["null"].values.mean())
    assert ci["index"].item() > 200 and ci["p_value"].item() == pytest.approx(1 / 21)
    assert ci.attrs["adjacency"] == "grid8"  # the reference's OpenCV default

    rng = np.random.default_rng(5)
    rand = analysis.clustering_index(_grid_map(rng.permutation(_quadrants())), n_perm=20, seed=1)
    assert abs(rand["index"].item()) < 0.01 * ci["index"].item()
    # 25 % occupancy, below the 8-neighbour site-percolation threshold (0.407): small clusters
    assert 1.0 < rand["observed"].item() < 5.0


def test_observed_matches_slow_bfs_reference_and_is_seeded():
    rng = np.random.default_rng(0)
    labels = rng.choice(["a", "b", "c", "none"], size=SIDE * SIDE, p=[0.3, 0.3, 0.2, 0.2])
    ci = analysis.clustering_index(_grid_map(labels), n_perm=5, seed=3)
    assert ci["observed"].item() == pytest.approx(_slow_mean_component_size(labels.reshape(SIDE, SIDE)))
    four = analysis.clustering_index(_grid_map(labels), n_perm=5, seed=3, connectivity=4)
    assert four["observed"].item() == pytest.approx(_slow_mean_component_size(labels.reshape(SIDE, SIDE), connectivity=4))
    assert four["observed"].item() < ci["observed"].item()  # corners join components under 8-connectivity
    again = analysis.clustering_index(_grid_map(labels), n_perm=5, seed=3)
    np.testing.assert_array_equal(ci["null"].values, again["null"].values)
    # each null value is the slow reference on the same permuted map
    perm_rng = np.random.default_rng(3)
    first = perm_rng.permutation(labels)
    assert ci["null"].values[0] == pytest.approx(_slow_mean_component_size(first.reshape(SIDE, SIDE)))


def test_grid_labelling_agrees_with_graph_components():
    rng = np.random.default_rng(1)
    codes = rng.integers(-1, 4, size=SIDE * SIDE)
    row, col = np.divmod(np.arange(SIDE * SIDE), SIDE)
    shape, flat = _grid_image((row, col))
    for conn in (4, 8):
        np.testing.assert_array_equal(
            _components_grid(codes, 4, shape, flat, conn), _components_graph(codes, 4, grid_edges(row, col, conn))
        )


def test_irregular_sheet_uses_neighbour_graph():
    # jittered positions, no row/col: radius graph; clustered halves vs shuffled
    rng = np.random.default_rng(2)
    n = 400
    pos = rng.uniform(0, 20, size=(n, 2))
    labels = np.where(pos[:, 0] < 10, "left", "right")
    pref = xr.DataArray(labels, dims="unit", coords={"x_mm": ("unit", pos[:, 0]), "y_mm": ("unit", pos[:, 1]),
                                                    "unit_id": ("unit", np.arange(n))})
    ci = analysis.clustering_index(pref, n_perm=10, radius_mm=2.0)
    assert ci.attrs["adjacency"] == "radius" and ci["observed"].item() == pytest.approx(200.0)
    assert ci["index"].item() > 50
    knn = analysis.clustering_index(pref, n_perm=5)  # default k-NN, k = 8
    assert knn.attrs["adjacency"] == "knn" and knn.attrs["k"] == 8


def test_clustering_index_from_sheet_uses_preference_map():
    rng = np.random.default_rng(3)
    side = 16
    row, col = np.divmod(np.arange(side * side), side)
    dom = np.repeat(["faces", "places"], 6)
    r = rng.normal(size=(12, side * side))
    r[:6, col < 8] += 5.0
    r[6:, col >= 8] += 5.0
    ds = cx.make_sheet(r, x_mm=col * 1.0, y_mm=row * 1.0, row=row, col=col, stimuli={"domain": dom})
    ci = analysis.clustering_index(ds, n_perm=4, by="domain")
    ref = analysis.clustering_index(analysis.preference_map(ds, by="domain"), n_perm=4)
    assert ci["observed"].item() == ref["observed"].item() == pytest.approx(128.0)


def test_topography_gradient_positive_shuffled_zero_and_matches_reference():
    row, col = np.divmod(np.arange(SIDE * SIDE), SIDE)
    num = (col // 4).astype(float)  # 8 ordered classes, a smooth gradient along x
    tm = analysis.topography_index(_grid_map(num), n_perm=20, seed=0)
    assert tm["observed"].item() == pytest.approx(_slow_topography(num.reshape(SIDE, SIDE).astype(int), 8))
    assert tm.attrs["n_classes"] == 8 and tm.attrs["adjacency"] == "grid8"
    assert tm["index"].item() > 2.0
    rng = np.random.default_rng(0)
    shuffled = analysis.topography_index(_grid_map(rng.permutation(num)), n_perm=20, seed=0)
    assert abs(shuffled["index"].item()) < 0.05 * tm["index"].item()
    # units without preference (NaN) are left out as centres and as neighbours
    holes = num.copy()
    holes[::7] = np.nan
    ranks = np.where(np.isnan(holes), -1, holes).astype(int).reshape(SIDE, SIDE)
    t2 = analysis.topography_index(_grid_map(holes), n_perm=2)
    assert t2["observed"].item() == pytest.approx(_slow_topography(ranks, 8))
    assert np.isnan(t2["proximity"].values[0])


def test_topography_ranks_follow_class_order_of_labels():
    row, col = np.divmod(np.arange(SIDE * SIDE), SIDE)
    labels = (col // 4 + 1).astype(str)  # "1".."8" strings -> numeric order, not lexicographic
    labels[labels == "8"] = "10"
    tm = analysis.topography_index(_grid_map(labels), n_perm=2)
    assert tm.attrs["classes"] == ["1", "2", "3", "4", "5", "6", "7", "10"]
    # numeric labels: distances on the numbers themselves (|7 - 10| = 3), as the paper's |n_i - n_j|
    values = (col // 4 + 1).reshape(SIDE, SIDE)
    values[values == 8] = 10
    assert tm.attrs["distance"] == "value"
    assert tm["observed"].item() == pytest.approx(_slow_topography(values, 8))
    words = analysis.topography_index(_grid_map(np.array(list("abcdefgh"))[col // 4], attrs={"classes": list("abcdefgh")}), n_perm=2)
    assert words.attrs["distance"] == "rank"
    assert words["observed"].item() == pytest.approx(_slow_topography((col // 4).reshape(SIDE, SIDE), 8))


def test_clustering_errors():
    with pytest.raises(cx.errors.UndefinedStatisticError, match="no unit has a preference"):
        analysis.clustering_index(_grid_map(np.full(SIDE * SIDE, "none")))
    with pytest.raises(cx.errors.ParameterError, match=r"clustering_index: n_perm must be in \[1, inf\); got 0"):
        analysis.clustering_index(_grid_map(_quadrants()), n_perm=0)
    with pytest.raises(cx.errors.ParameterError, match=r"connectivity must be one of \[4, 8\]; got 6"):
        analysis.clustering_index(_grid_map(_quadrants()), connectivity=6)
    with pytest.raises(cx.errors.ParameterError, match=r"reduce must be one of \['mean', 'median'\]"):
        analysis.clustering_index(_grid_map(_quadrants()), reduce="max")
    with pytest.raises(cx.errors.ParameterError, match=r"border must be one of \['include', 'exclude'\]"):
        analysis.topography_index(_grid_map(_quadrants()), border="outside")
    with pytest.raises(cx.errors.ParameterTypeError, match="n_perm must be an integer; got 2.5"):
        analysis.topography_index(_grid_map(_quadrants()), n_perm=2.5)
    bad = _grid_map(_quadrants(), attrs={"classes": ["faces", "bodies"]})
    with pytest.raises(cx.SheetError, match="not in the map's classes"):
        analysis.clustering_index(bad)
    no_grid = _grid_map(_quadrants()).assign_coords(row=("unit", np.zeros(SIDE * SIDE, int)))
    with pytest.raises(cx.SheetError, match="not on a regular grid"):
        analysis.clustering_index(no_grid, grid=True)
    with pytest.raises(cx.errors.UndefinedStatisticError, match="fewer than 2 units"):
        analysis.topography_index(_grid_map(np.full(SIDE * SIDE, np.nan)))
