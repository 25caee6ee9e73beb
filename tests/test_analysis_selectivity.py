"""d′ / Welch t / selectivity / preference, number and orientation maps: known answers and errors."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.stats as st

import cortexsim as cx
from cortexsim import analysis
from cortexsim.analysis.preference import half_max_width

pytestmark = pytest.mark.filterwarnings("ignore:The specified chunks separate")

DOMAINS = np.array(["faces"] * 10 + ["objects"] * 12 + ["places"] * 8)


def _sheet(responses, stimuli, n_side=None, **kw):
    n = responses.shape[1]
    if n_side is not None:
        row, col = np.divmod(np.arange(n), n_side)
        kw.update(row=row, col=col, x_mm=col * 0.5, y_mm=row * 0.5)
    else:
        kw.setdefault("x_mm", np.arange(n, dtype=float))
        kw.setdefault("y_mm", np.zeros(n))
    return cx.make_sheet(responses, stimuli=stimuli, area="IT", layer="fc", **kw)


@pytest.fixture
def domain_sheet():
    rng = np.random.default_rng(1)
    r = (rng.normal(size=(30, 40)) * rng.uniform(0.5, 2, size=40) + 5).astype(np.float32)
    r[DOMAINS == "faces", :10] += 8.0  # units 0-9 prefer faces (d′ > 2)
    return _sheet(r, {"domain": DOMAINS})


def _ref_dprime(a, b):
    a, b = a.astype(float), b.astype(float)
    return (a.mean(0) - b.mean(0)) / np.sqrt((a.var(0, ddof=1) + b.var(0, ddof=1)) / 2)


def test_dprime_and_t_match_numpy_and_scipy(domain_sheet):
    r = domain_sheet["responses"].values
    faces = DOMAINS == "faces"
    d = analysis.dprime(domain_sheet, by="domain", target="faces")
    np.testing.assert_allclose(d.values, _ref_dprime(r[faces], r[~faces]), rtol=1e-10)
    t = analysis.tstat(domain_sheet, by="domain", target="faces")
    ref = st.ttest_ind(r[faces].astype(float), r[~faces].astype(float), equal_var=False).statistic
    np.testing.assert_allclose(t.values, ref, rtol=1e-10)
    # named reference set
    sel = np.isin(DOMAINS, ["places"])
    d2 = analysis.dprime(domain_sheet, by="domain", target="objects", reference=["places"])
    np.testing.assert_allclose(d2.values, _ref_dprime(r[DOMAINS == "objects"], r[sel]), rtol=1e-10)
    t2 = analysis.tstat(domain_sheet, by="domain", target="faces", reference=["objects", "places"])
    np.testing.assert_allclose(t2.values, ref, rtol=1e-10)  # objects+places is the rest
    # every unit coord is kept, so the map can be placed on the sheet
    for name in ("area", "layer", "channel", "row", "col", "x_mm", "y_mm", "unit_id"):
        np.testing.assert_array_equal(d[name].values, domain_sheet[name].values)
    assert d.attrs["ddof"] == 1 and d.attrs["reference"] == "rest"


def test_dprime_ddof0_and_large_offset_is_accurate():
    rng = np.random.default_rng(2)
    r = rng.normal(size=(12, 5)) * 1e-3 + 1e4  # large mean, tiny spread: naive Σx² would cancel
    dom = np.array(["a"] * 6 + ["b"] * 6)
    ds = _sheet(r, {"domain": dom})
    a, b = r[:6], r[6:]
    ref = (a.mean(0) - b.mean(0)) / np.sqrt((a.var(0) + b.var(0)) / 2)
    np.testing.assert_allclose(analysis.dprime(ds, target="a", ddof=0).values, ref, rtol=1e-6)


def test_selectivity_all_categories_and_numeric_coord(domain_sheet):
    sel = analysis.selectivity(domain_sheet, by="domain")
    assert sel.dims == ("category", "unit") and sel["category"].values.tolist() == ["faces", "objects", "places"]
    for c in ["faces", "objects", "places"]:
        np.testing.assert_allclose(sel.sel(category=c).values, analysis.dprime(domain_sheet, target=c).values)
    t = analysis.selectivity(domain_sheet, stat="t")
    np.testing.assert_allclose(t.sel(category="places").values, analysis.tstat(domain_sheet, target="places").values)
    # numerosity: numbers as labels; target given as int or str
    num = np.repeat([1, 2, 3], 10)
    ds = _sheet(domain_sheet["responses"].values, {"numerosity": num})
    np.testing.assert_allclose(
        analysis.dprime(ds, by="numerosity", target=2).values, analysis.dprime(ds, by="numerosity", target="2").values
    )


def test_preference_map_threshold(domain_sheet):
    pref = analysis.preference_map(domain_sheet, by="domain", threshold=2.0)
    sel = analysis.selectivity(domain_sheet).values
    best = np.array(["faces", "objects", "places"])[sel.argmax(0)]
    expect = np.where(sel.max(0) > 2.0, best, "none")
    np.testing.assert_array_equal(pref.values, expect)
    assert (pref.values[:10] == "faces").all() and (pref.values[10:] == "none").all()
    assert pref.attrs["classes"] == ["faces", "objects", "places"] and pref.attrs["threshold"] == 2.0
    # from a precomputed selectivity, same answer; threshold 100 -> all none
    assert (analysis.preference_map(analysis.selectivity(domain_sheet), threshold=100).values == "none").all()


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda ds: analysis.dprime(ds, by="category", target="faces"), cx.SheetError, "no stimulus coord 'category'"),
        (lambda ds: analysis.dprime(ds, by="domain", target="cars"), cx.SheetError, "'cars' is not a value"),
        (lambda ds: analysis.dprime(ds, by="domain", target="faces", reference=["faces"]), ValueError, "its own reference"),
        (lambda ds: analysis.dprime(ds, by="domain"), ValueError, "target is required"),
        (lambda ds: analysis.dprime(ds["responses"], target="faces"), cx.SheetError, "needs a Sheet"),
        (lambda ds: analysis.selectivity(ds, stat="auc"), ValueError, "stat must be"),
        (lambda ds: analysis.dprime(ds, target="faces", undefined="zero"), ValueError, "undefined must be"),
    ],
)
def test_bad_input_errors(domain_sheet, call, exc, match):
    with pytest.raises(exc, match=match):
        call(domain_sheet)


def test_constant_units_nan_by_default_or_raise(domain_sheet):
    r = domain_sheet["responses"].values.copy()
    r[:, 3] = 0.0  # a dead unit
    ds = _sheet(r, {"domain": DOMAINS})
    with pytest.warns(RuntimeWarning, match=r"undefined \(zero variance\) for 1 of"):
        d = analysis.dprime(ds, target="faces")
    assert np.isnan(d.values[3]) and np.isfinite(np.delete(d.values, 3)).all()
    with pytest.raises(cx.SheetError, match=r"undefined .*1 units \(unit_id \[3\]\)"):
        analysis.dprime(ds, target="faces", undefined="raise")
    with pytest.raises(cx.SheetError, match="undefined"):
        analysis.tstat(ds, target="faces", undefined="raise")
    with pytest.warns(RuntimeWarning):
        assert analysis.preference_map(ds).values[3] == "none"


def test_constant_sheet_always_raises(domain_sheet):
    ds = _sheet(np.ones_like(domain_sheet["responses"].values), {"domain": DOMAINS})
    for undefined in ("nan", "raise"):
        with pytest.raises(cx.SheetError, match="undefined for every unit.*constant"):
            analysis.dprime(ds, target="faces", undefined=undefined)


def test_single_stimulus_category_raises():
    rng = np.random.default_rng(0)
    dom = np.array(["faces"] + ["objects"] * 5)
    ds = _sheet(rng.normal(size=(6, 4)), {"domain": dom})
    with pytest.raises(cx.SheetError, match=r"at least 2 stimuli.*single stimulus.*\['faces'\]"):
        analysis.dprime(ds, target="faces")
    with pytest.raises(cx.SheetError, match="at least 2 stimuli"):
        analysis.selectivity(ds)
    one = _sheet(rng.normal(size=(6, 4)), {"domain": ["faces"] * 6})
    with pytest.raises(cx.SheetError, match="single value"):
        analysis.selectivity(one)


def test_missing_labels_are_left_out():
    rng = np.random.default_rng(3)
    r = rng.normal(size=(9, 6))
    dom = np.array(["a", "a", "a", "b", "b", "b", "", "", ""])
    d = analysis.dprime(_sheet(r, {"domain": dom}), target="a")
    np.testing.assert_allclose(d.values, _ref_dprime(r[:3], r[3:6]), rtol=1e-10)


def test_dask_sheet_matches_in_memory(tmp_path, domain_sheet):
    path = cx.save_sheet(domain_sheet, tmp_path / "s.h5")
    lazy = cx.open_sheet(path, chunks={"stimulus": 7, "unit": 16})
    assert hasattr(lazy["responses"].data, "dask")
    np.testing.assert_allclose(analysis.dprime(lazy, target="faces").values,
                               analysis.dprime(domain_sheet, target="faces").values, rtol=1e-12)
    np.testing.assert_allclose(analysis.selectivity(lazy, stat="t").values,
                               analysis.selectivity(domain_sheet, stat="t").values, rtol=1e-12)
    np.testing.assert_array_equal(analysis.preference_map(lazy).values, analysis.preference_map(domain_sheet).values)


def _gratings(n_units, seed=0, kappa=1.5):
    rng = np.random.default_rng(seed)
    oris, sfs, phases = np.arange(8) * 22.5, np.array([1.0, 2.0, 4.0]), np.arange(4) * 90.0
    g = np.array(list(itertools.product(oris, sfs, phases)))
    theta, sf = rng.uniform(0, 180, n_units), rng.choice(sfs, n_units)
    r = (np.exp(kappa * (np.cos(np.deg2rad(2 * (g[:, :1] - theta))) - 1))
         * np.exp(-np.log2(g[:, 1:2] / sf) ** 2) * (1 + 0.3 * np.cos(np.deg2rad(g[:, 2:3]))))
    stim = {"orientation_deg": g[:, 0], "sf_cpd": g[:, 1], "phase": g[:, 2]}
    return r.astype(np.float32), stim, theta, sf


def test_orientation_map_recovers_planted_preferences(tmp_path):
    r, stim, theta, sf = _gratings(64)
    ds = _sheet(r, stim, n_side=8)
    ori = analysis.orientation_map(ds)
    err = np.abs((ori["preferred_orientation_deg"].values - theta + 90) % 180 - 90)
    assert err.max() < 0.5  # degrees; 8 orientations sampled
    np.testing.assert_array_equal(ori["preferred_sf_cpd"].values, sf)
    # hand-computed CV / OSI of unit 0 from its tuning curve at the preferred SF
    t0 = ori["tuning"].isel(unit=0).values
    z = np.sum(t0 * np.exp(2j * np.deg2rad(np.arange(8) * 22.5))) / t0.sum()
    assert ori["circular_variance"].values[0] == pytest.approx(1 - abs(z))
    i = t0.argmax()
    assert ori["osi"].values[0] == pytest.approx((t0[i] - t0[(i + 4) % 8]) / (t0[i] + t0[(i + 4) % 8]))
    # an untuned unit: CV 1, OSI 0
    flat = r.copy()
    flat[:, 5] = 1.0
    o2 = analysis.orientation_map(_sheet(flat, stim, n_side=8))
    assert o2["circular_variance"].values[5] == pytest.approx(1.0) and o2["osi"].values[5] == pytest.approx(0.0)
    # lazily opened sheet gives the same map
    lazy = cx.open_sheet(cx.save_sheet(ds, tmp_path / "g.h5"), chunks={"stimulus": 20, "unit": 30})
    np.testing.assert_allclose(analysis.orientation_map(lazy)["preferred_orientation_deg"].values,
                               ori["preferred_orientation_deg"].values, rtol=1e-9)


def test_orientation_map_needs_orientation_coord(domain_sheet):
    with pytest.raises(cx.SheetError, match="no stimulus coord 'orientation_deg'"):
        analysis.orientation_map(domain_sheet)


def test_number_map_preferred_and_half_max_width():
    nums = np.arange(1, 10)
    rng = np.random.default_rng(4)
    pref = rng.integers(2, 9, size=30)
    sigma = 1.0
    curves = np.exp(-((nums[:, None] - pref[None]) ** 2) / (2 * sigma**2))
    stim = np.repeat(nums, 6)
    r = np.repeat(curves, 6, axis=0) + rng.normal(scale=0.01, size=(len(stim), 30))
    nm = analysis.number_map(_sheet(r, {"numerosity": stim}), threshold=2.0)
    np.testing.assert_array_equal(nm["preferred_numerosity"].values, pref)
    # Gaussian FWHM = 2.3548 σ; linear interpolation between integer samples is within 0.25
    np.testing.assert_allclose(nm["tuning_width"].values, 2 * np.sqrt(2 * np.log(2)) * sigma, atol=0.25)
    assert nm["selective"].all()
    # exact half-max crossings on a triangular curve: 1 at x=2, 0.5 at x=1 and x=3
    w, open_ = half_max_width(np.arange(5.0), np.array([[0.0], [0.5], [1.0], [0.5], [0.0]]))
    assert w[0] == pytest.approx(2.0) and not open_[0]
    w, open_ = half_max_width(np.arange(3.0), np.array([[1.0], [0.8], [0.0]]))  # peak at the edge
    assert open_[0] and w[0] == pytest.approx(1.0 + 0.3 / 0.8)
    with pytest.raises(cx.SheetError, match="numeric stimulus coord"):
        analysis.number_map(_sheet(r, {"numerosity": stim.astype(str).astype(object) + "x"}))
