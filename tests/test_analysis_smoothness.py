"""Smoothness (similarity vs distance) and Moran's I against slow reference code and known answers."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import xarray as xr

import cortexsim as cx
from cortexsim.analysis.smoothness import morans_i, sample_pairs, smoothness


def unit_map(values, pos, name="value", **attrs):
    return xr.DataArray(
        np.asarray(values, float), dims="unit",
        coords={"x_mm": ("unit", pos[:, 0]), "y_mm": ("unit", pos[:, 1])}, name=name, attrs=attrs,
    )


def random_sheet(n_units=30, n_stim=20, seed=0, smooth=False):
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, 10, (n_units, 2))
    if smooth:  # tuning peak follows x: nearby units have similar profiles
        s = np.arange(n_stim)[:, None]
        resp = np.exp(-0.5 * ((s - pos[:, 0] * n_stim / 10) / 2.0) ** 2) + 0.05 * rng.normal(size=(n_stim, n_units))
    else:
        resp = rng.normal(size=(n_stim, n_units))
    return cx.make_sheet(resp.astype(np.float32), x_mm=pos[:, 0], y_mm=pos[:, 1]), pos, resp


def reference_curve(resp, pos, edges, sim_fn):
    """All pairs, one at a time: obviously correct, slow."""
    sums, counts = np.zeros(len(edges) - 1), np.zeros(len(edges) - 1)
    for i, j in itertools.combinations(range(len(pos)), 2):
        d = np.hypot(*(pos[i] - pos[j]))
        b = np.searchsorted(edges, d, side="right") - 1
        if d == edges[-1]:
            b = len(edges) - 2
        if 0 <= b < len(edges) - 1:
            sums[b] += sim_fn(i, j)
            counts[b] += 1
    return sums / counts, counts


def test_correlation_curve_matches_pairwise_loop():
    ds, pos, resp = random_sheet()
    out = smoothness(ds, bins=5, max_distance_mm=8.0, n_pairs=10_000)
    ref, counts = reference_curve(resp, pos, np.linspace(0, 8, 6), lambda i, j: np.corrcoef(resp[:, i], resp[:, j])[0, 1])
    assert out.attrs["sampling"] == "all pairs"
    np.testing.assert_allclose(out["similarity"].values, ref, atol=1e-5)
    np.testing.assert_array_equal(out["n_pairs"].values, counts)
    np.testing.assert_allclose(out["distance_bin"].values, [0.8, 2.4, 4.0, 5.6, 7.2])


def test_circular_difference_for_orientation():
    pos = np.array([[0.0, 0], [1, 0], [0, 3]])
    ori = unit_map([1.0, 179.0, 91.0], pos, name="preferred_orientation", period=180.0)
    out = smoothness(ori, bins=[0, 2, 4], shuffle=False)
    assert out.attrs["metric"] == "circular"
    # pairs: (0,1) d=1 diff 2; (0,2) d=3 diff 90; (1,2) d=sqrt(10)>3.16 diff 88
    np.testing.assert_allclose(out["similarity"].values, [2.0, 89.0])
    plain = smoothness(unit_map([1.0, 179.0, 91.0], pos), bins=[0, 2, 4], shuffle=False)
    assert plain.attrs["metric"] == "absdiff"
    np.testing.assert_allclose(plain["similarity"].values, [178.0, (90 + 88) / 2])


def test_smooth_map_beats_shuffle_and_decays():
    ds, *_ = random_sheet(n_units=400, n_stim=30, smooth=True)
    out = smoothness(ds, bins=5, max_distance_mm=5.0, n_pairs=20_000, seed=1)
    sim, shuf = out["similarity"].values, out["similarity_shuffled"].values
    assert sim[0] > 0.8 and sim[0] > shuf[0] + 0.5
    assert np.all(np.diff(sim) < 0)
    assert np.ptp(shuf) < 0.1  # the null does not depend on distance


def test_sampled_pairs_cover_every_bin_and_are_seeded():
    rng = np.random.default_rng(0)
    pos = rng.uniform(0, 100, (5000, 2))
    a, b = sample_pairs(pos, 4000, 20.0, np.random.default_rng(3))
    d = np.hypot(*(pos[a] - pos[b]).T)
    counts = np.histogram(d, bins=np.linspace(0, 20, 5))[0]
    assert counts.min() > 500 and np.all(a != b)
    a2, b2 = sample_pairs(pos, 4000, 20.0, np.random.default_rng(3))
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(b, b2)


@pytest.mark.filterwarnings("ignore:The specified chunks separate")
def test_dask_sheet_gives_the_same_curve(tmp_path):
    ds, *_ = random_sheet(n_units=200, n_stim=16, smooth=True)
    path = cx.save_sheet(ds, tmp_path / "s.h5")
    lazy = cx.open_sheet(path, chunks={"stimulus": 8, "unit": 64})
    assert hasattr(lazy["responses"].data, "dask")
    kw = dict(bins=4, max_distance_mm=4.0, n_pairs=3000, seed=2)
    a, b = smoothness(ds, **kw), smoothness(lazy, **kw)
    np.testing.assert_allclose(a["similarity"].values, b["similarity"].values, atol=1e-6)
    np.testing.assert_allclose(a["similarity_shuffled"].values, b["similarity_shuffled"].values, atol=1e-6)


def test_smoothness_bad_input():
    ds, pos, _ = random_sheet()
    with pytest.raises(cx.SheetError, match="x_mm"):
        smoothness(xr.DataArray(np.arange(5.0), dims="unit"))
    const = cx.make_sheet(np.ones((5, 30), np.float32), x_mm=pos[:, 0], y_mm=pos[:, 1])
    with pytest.raises(ValueError, match="constant"):
        smoothness(const)
    nan = ds.copy(deep=True)
    nan["responses"][0, 0] = np.nan
    with pytest.raises(cx.SheetError, match="NaN"):
        smoothness(nan)
    two = cx.make_sheet(np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32), x_mm=np.arange(6.0),
                        y_mm=np.zeros(6), area=["V1"] * 3 + ["IT"] * 3)
    with pytest.raises(cx.SheetError, match="area="):
        smoothness(two)
    assert smoothness(two, area="IT", max_distance_mm=3.0).attrs["sampling"] == "all pairs"
    with pytest.raises(ValueError, match="constant"):
        smoothness(unit_map(np.ones(30), pos))
    with pytest.raises(ValueError, match="bin edges"):
        smoothness(ds, bins=[0, 2, 1])


# --------------------------------------------------------------------------- Moran's I


def moran_reference(v, pos, radius):
    """Dense O(n²) Moran's I with normality/randomisation moments (Cliff & Ord formulas)."""
    n = len(v)
    w = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j and np.hypot(*(pos[i] - pos[j])) <= radius:
                w[i, j] = 1.0
    z = v - v.mean()
    s0 = w.sum()
    I = n / s0 * (z @ w @ z) / (z @ z)
    s1 = 0.5 * ((w + w.T) ** 2).sum()
    s2 = ((w.sum(0) + w.sum(1)) ** 2).sum()
    ei = -1 / (n - 1)
    vn = (n * n * s1 - n * s2 + 3 * s0**2) / ((n * n - 1) * s0**2) - ei**2
    k = (np.sum(z**4) / n) / (np.sum(z**2) / n) ** 2
    vr = (n * ((n * n - 3 * n + 3) * s1 - n * s2 + 3 * s0**2) - k * ((n * n - n) * s1 - 2 * n * s2 + 6 * s0**2)) / (
        (n - 1) * (n - 2) * (n - 3) * s0**2
    ) - ei**2
    return I, vn, vr


def test_checkerboard_is_minus_one():
    g = np.arange(8.0)
    x, y = np.meshgrid(g, g)
    pos = np.c_[x.ravel(), y.ravel()]
    v = ((x + y) % 2).ravel()
    out = morans_i(unit_map(v, pos), radius_mm=1.0)
    assert float(out["I"]) == pytest.approx(-1.0, abs=1e-12)
    assert float(out["expected_I"]) == pytest.approx(-1 / 63)
    assert float(out["p_norm"]) < 1e-10


def test_moran_matches_dense_reference():
    rng = np.random.default_rng(4)
    pos = rng.uniform(0, 10, (60, 2))
    v = pos[:, 0] + rng.normal(size=60)
    out = morans_i(v, positions=pos, radius_mm=2.5)
    I, vn, vr = moran_reference(v, pos, 2.5)
    assert float(out["I"]) == pytest.approx(I, rel=1e-10)
    assert float(out["variance_norm"]) == pytest.approx(vn, rel=1e-10)
    assert float(out["variance_rand"]) == pytest.approx(vr, rel=1e-10)
    with pytest.warns(FutureWarning, match=r"morans_i: passing positions by position is deprecated.*positions="):
        legacy = morans_i(v, pos, radius_mm=2.5)  # the previous release's positional form, one more release
    assert float(legacy["I"]) == float(out["I"])
    # k nearest neighbours: reference with an explicit loop
    out_k = morans_i(v, positions=pos, k=4)
    d = np.hypot(*(pos[:, None] - pos[None]).transpose(2, 0, 1))
    w = np.zeros((60, 60))
    for i in range(60):
        w[i, np.argsort(d[i])[1:5]] = 1
    z = v - v.mean()
    assert float(out_k["I"]) == pytest.approx(60 / w.sum() * (z @ w @ z) / (z @ z), rel=1e-10)


def test_moran_permutation_null():
    g = np.arange(15.0)
    x, y = np.meshgrid(g, g)
    pos = np.c_[x.ravel(), y.ravel()]
    smooth = morans_i(unit_map(x.ravel(), pos), radius_mm=1.5, n_perm=199, seed=0)
    assert float(smooth["I"]) > 0.8 and float(smooth["p_value"]) == pytest.approx(1 / 200)
    assert smooth["null"].dims == ("perm",) and smooth.sizes["perm"] == 199
    with pytest.warns(FutureWarning, match=r"morans_i\(permutations=...\) is deprecated.*use n_perm="):
        old = morans_i(unit_map(x.ravel(), pos), radius_mm=1.5, permutations=199, seed=0)
    assert float(old["p_sim"]) == float(smooth["p_value"])  # the old output name too, for one release
    noise = np.random.default_rng(1).normal(size=len(pos))
    rnd = morans_i(unit_map(noise, pos), radius_mm=1.5, n_perm=199, seed=0)
    assert float(rnd["p_value"]) > 0.05
    assert float(rnd["null"].mean()) == pytest.approx(float(rnd["expected_I"]), abs=0.01)


def test_moran_bad_input():
    pos = np.random.default_rng(0).uniform(0, 5, (20, 2))
    with pytest.raises(ValueError, match="constant"):
        morans_i(np.ones(20), positions=pos, radius_mm=1.0)
    with pytest.raises(ValueError, match="exactly one"):
        morans_i(np.arange(20.0), positions=pos, radius_mm=1.0, k=3)
    with pytest.raises(ValueError, match="no unit has a neighbour"):
        morans_i(np.arange(20.0), positions=pos, radius_mm=1e-6)
    with pytest.raises(cx.SheetError, match="one value per unit"):
        morans_i(np.arange(19.0), positions=pos, radius_mm=1.0)
    with pytest.raises(cx.SheetError, match="positions"):
        morans_i(xr.DataArray(np.arange(20.0), dims="unit"), radius_mm=1.0)


def test_morans_k_neighbours_are_the_neighbour_graphs():
    """morans_i(k=3)'s weights and the k-NN graph/clustering edges are the same neighbours (their union),
    also where units coincide (the k-d tree may then list a unit's twin before the unit itself)."""
    from cortexsim.analysis.graphs import neighbour_edges
    from cortexsim.analysis.smoothness import spatial_weights

    rng = np.random.default_rng(3)
    pos = rng.uniform(0, 10, size=(40, 2))
    pos[5] = pos[4]  # two coincident units
    pos[20] = pos[4]
    w = spatial_weights(pos, k=3)
    assert (np.diff(w.indptr) == 3).all()  # exactly 3 others per unit, itself never
    da = xr.DataArray(np.zeros(40), dims="unit", coords={"x_mm": ("unit", pos[:, 0]), "y_mm": ("unit", pos[:, 1])})
    edges, info = neighbour_edges(da, k=3, grid=False)
    directed = set(zip(*(a.tolist() for a in w.nonzero())))
    assert info == {"adjacency": "knn", "k": 3}
    assert set(map(tuple, edges.tolist())) == {tuple(sorted(p)) for p in directed}
