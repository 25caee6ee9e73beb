"""RSA, entropy, PoZ, expert units and tuning curves against scipy / pandas / slow loops."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import pdist, squareform

import cortexsim as cx
from cortexsim.analysis.representation import (
    compare_rdms,
    entropy,
    expert_units,
    percentage_of_zeros,
    rdm,
    tuning_curves,
)


def sheet(n_stim=12, n_units=40, seed=0, areas=None, **stimuli):
    rng = np.random.default_rng(seed)
    resp = rng.normal(size=(n_stim, n_units)).astype(np.float32)
    x = np.arange(n_units, dtype=float)
    stim = stimuli or {"category": np.tile(["a", "b", "c"], n_stim // 3)}
    return cx.make_sheet(resp, x_mm=x, y_mm=np.zeros(n_units), area=areas if areas is not None else "IT", stimuli=stim)


def test_rdm_matches_pdist():
    ds = sheet()
    resp = ds["responses"].values.astype(float)
    out = rdm(ds)
    assert out.dims == ("stimulus_a", "stimulus_b")
    np.testing.assert_allclose(out.values, squareform(pdist(resp, "correlation")), atol=1e-12)
    assert out["stimulus_a"].values.tolist() == ds["stimulus_id"].values.tolist()
    cond = rdm(ds, by="category", metric="euclidean")
    means = pd.DataFrame(resp).groupby(ds["category"].values).mean().to_numpy()
    assert cond.dims == ("category_a", "category_b") and cond["category_a"].values.tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(cond.values, squareform(pdist(means, "euclidean")), atol=1e-10)


@pytest.mark.filterwarnings("ignore:The specified chunks separate")
def test_rdm_per_area_and_lazy(tmp_path):
    ds = sheet(areas=["V1"] * 20 + ["IT"] * 20)
    out = rdm(ds)
    assert out.dims == ("area", "stimulus_a", "stimulus_b") and out["area"].values.tolist() == ["V1", "IT"]
    it = ds["responses"].values[:, 20:].astype(float)
    np.testing.assert_allclose(out.sel(area="IT").values, squareform(pdist(it, "correlation")), atol=1e-12)
    lazy = cx.open_sheet(cx.save_sheet(ds, tmp_path / "s.h5"), chunks={"stimulus": 12, "unit": 8})
    for metric in ("correlation", "euclidean", "cosine"):
        np.testing.assert_allclose(rdm(lazy, area="V1", metric=metric).values,
                                   squareform(pdist(ds["responses"].values[:, :20].astype(float), metric)), atol=1e-9)


def test_compare_rdms_is_scipy():
    rng = np.random.default_rng(1)
    a = squareform(rng.random(45))
    b = squareform(rng.random(45) + 0.5 * squareform(a, checks=False))
    iu = np.triu_indices(10, k=1)
    k = compare_rdms(a, b, "kendall")
    ref = stats.kendalltau(a[iu], b[iu], variant="b")
    assert float(k) == pytest.approx(ref.statistic, abs=1e-12) and k.attrs["pvalue"] == pytest.approx(ref.pvalue)
    s = compare_rdms(a, b, "spearman")
    assert float(s) == pytest.approx(stats.spearmanr(a[iu], b[iu]).statistic, abs=1e-12)
    assert float(compare_rdms(a, a)) == pytest.approx(1.0)
    ds = sheet(areas=["V1"] * 20 + ["IT"] * 20)
    both = compare_rdms(rdm(ds), rdm(ds), "spearman")
    np.testing.assert_allclose(both.values, [1.0, 1.0])


def test_entropy_matches_histogram_loop():
    ds = sheet(n_stim=60, n_units=15)
    ds["responses"][:, 3] = 2.0  # a constant unit
    resp = ds["responses"].values
    out = entropy(ds, bins=8)
    ref = []
    for u in range(resp.shape[1]):
        x = resp[:, u]
        if np.ptp(x) == 0:
            ref.append(0.0)
            continue
        p = np.histogram(x, bins=8, range=(x.min(), x.max()))[0] / len(x)
        ref.append(-np.sum(p[p > 0] * np.log2(p[p > 0])))
    np.testing.assert_allclose(out.values, ref, atol=1e-12)
    assert out.attrs["units"] == "bits" and "x_mm" in out.coords
    flat = cx.make_sheet(np.arange(32, dtype=np.float32)[:, None], x_mm=[0.0], y_mm=[0.0])
    assert entropy(flat, bins=32).item() == pytest.approx(5.0)


def test_percentage_of_zeros_by_hand():
    resp = np.array([[0, 1, -1], [0, 2, 3], [1, 0, 0], [0, 0, 5]], np.float32)
    ds = cx.make_sheet(resp, x_mm=np.arange(3.0), y_mm=np.zeros(3))
    np.testing.assert_allclose(percentage_of_zeros(ds).values, [75.0, 50.0, 50.0])
    np.testing.assert_allclose(percentage_of_zeros(ds, atol=1.0).values, [100.0, 75.0, 50.0])


def test_expert_units_definition():
    rng = np.random.default_rng(2)
    labels = np.repeat([0, 1, 2], 10)
    resp = rng.normal(size=(30, 4))
    resp[labels == 1, 0] += 6.0  # unit 0: strong class-1 expert
    resp[labels == 2, 1] += 0.3  # unit 1: weak preference, not an expert
    ds = cx.make_sheet(resp.astype(np.float32), x_mm=np.arange(4.0), y_mm=np.zeros(4), stimuli={"label": labels})
    out = expert_units(ds, by="label", threshold=2.0)
    a, b = resp[labels == 1, 0], resp[labels != 1, 0]
    d_ref = (a.mean() - b.mean()) / np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    assert float(out["dprime"][0]) == pytest.approx(d_ref, rel=1e-5)
    assert out["is_expert"].values.tolist()[:2] == [True, False]
    assert int(out["preferred"][0]) == 1
    assert out["n_experts"].sel({"class": 1}).item() == 1 + int(out["is_expert"][2:].values[out["preferred"][2:].values == 1].sum())


def test_tuning_curves_are_group_means():
    ori = np.tile([0.0, 45.0, 90.0, 135.0], 5)
    ds = sheet(n_stim=20, orientation_deg=ori)
    out = tuning_curves(ds)
    ref = pd.DataFrame(ds["responses"].values.astype(float)).groupby(ori).mean().to_numpy()
    assert out.dims == ("orientation_deg", "unit")
    np.testing.assert_allclose(out.values, ref, atol=1e-6)
    assert out["n_stimuli"].values.tolist() == [5, 5, 5, 5] and "x_mm" in out.coords


def test_representation_bad_input():
    ds = sheet()
    with pytest.raises(cx.SheetError, match="no stimulus coord 'label'"):
        expert_units(ds)
    one = sheet(n_stim=4, category=np.array(["a", "a", "a", "b"]))
    with pytest.raises(ValueError, match="fewer than 2 stimuli"):
        expert_units(one, by="category")
    const = ds.copy(deep=True)
    const["responses"][2] = 1.0
    with pytest.raises(ValueError, match="constant response pattern"):
        rdm(const)
    with pytest.raises(ValueError, match="different shapes"):
        compare_rdms(np.zeros((4, 4)), np.zeros((5, 5)))
    with pytest.raises(ValueError, match="NaN"):
        compare_rdms(np.full((4, 4), np.nan), np.ones((4, 4)))
    with pytest.raises(ValueError, match="method"):
        compare_rdms(np.eye(4), np.eye(4), method="pearson")
    with pytest.raises(cx.SheetError, match="needs a Sheet"):
        entropy(ds["responses"])
    with pytest.raises(ValueError, match="bins"):
        entropy(ds, bins=1)
