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


def test_near_constant_units_are_undefined_by_the_min_sd_rule(domain_sheet):
    """Issue 13, point 12: a unit that answers one category almost identically (SD ~1e-5 of the others')
    got d′ in the thousands, swamping means and colour scales."""
    r = domain_sheet["responses"].values.astype(np.float64).copy()
    rng = np.random.default_rng(5)
    r[:, 20] = np.where(DOMAINS == "faces", 0.17 + 1e-5 * rng.normal(size=30), 0.0)  # near-constant
    r[:, 21] = np.where(DOMAINS == "faces", 0.17 + 0.5 * rng.normal(size=30), 0.0)  # a real, noisy face unit
    ds = _sheet(r.astype(np.float32), {"domain": DOMAINS})
    raw = analysis.dprime(ds, target="faces", min_sd=0)
    assert raw.values[20] > 1000 and np.isfinite(raw.values).all()
    # pooled SD of unit 20 relative to the median of the area's units: ~1e-5, under the default 1e-3
    a, b = r[DOMAINS == "faces"], r[DOMAINS != "faces"]
    sd = np.sqrt((a.var(0, ddof=1) + b.var(0, ddof=1)) / 2)
    assert sd[20] / np.median(sd) < 1e-3 < sd[21] / np.median(sd)
    with pytest.warns(RuntimeWarning, match=r"pooled SD below min_sd=0\.001 × the area's median for 1 of 40 units.*"
                                            r"min_sd=0 to keep"):
        d = analysis.dprime(ds, target="faces")
    assert np.isnan(d.values[20]) and np.isfinite(np.delete(d.values, 20)).all()
    np.testing.assert_allclose(np.delete(d.values, 20), np.delete(raw.values, 20))
    assert d.attrs["min_sd"] == 1e-3
    with pytest.raises(cx.SheetError, match=r"near-constant.*unit_id \[20\]"):
        analysis.dprime(ds, target="faces", undefined="raise")
    with pytest.warns(RuntimeWarning, match="min_sd"):
        t = analysis.tstat(ds, target="faces")
    assert np.isnan(t.values[20])
    with pytest.warns(RuntimeWarning, match="min_sd"):
        assert np.isnan(analysis.selectivity(ds).sel(category="faces").values[20])
    with pytest.raises(ValueError, match="min_sd must be"):
        analysis.dprime(ds, target="faces", min_sd=float("nan"))


def test_min_sd_is_relative_to_each_area(domain_sheet):
    """The rule is scale-free: an area whose units all have tiny SDs is not flagged, only outliers in it."""
    import warnings

    r = domain_sheet["responses"].values.astype(np.float64)
    ds = cx.make_sheet(np.concatenate([r, r * 1e-6], axis=1).astype(np.float32), stimuli={"domain": DOMAINS},
                       area=np.repeat(["IT", "V1"], 40), x_mm=np.arange(80.0), y_mm=np.zeros(80))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        d = analysis.dprime(ds, target="faces")
    np.testing.assert_allclose(d.values[40:], d.values[:40], rtol=2e-3)
    with pytest.warns(RuntimeWarning, match="min_sd"):  # pooled over both areas, V1 would be all "near-constant"
        flat = analysis.dprime(ds.drop_vars("area").assign_coords(area=("unit", np.repeat("IT", 80))), target="faces")
    assert np.isnan(flat.values[40:]).all()


def test_nonfinite_responses_one_message_and_skipna(domain_sheet):
    """Issue 13, point 11: a NaN stimulus row made orientation maps / tuning curves all-NaN and RDMs 67 % NaN
    silently, and d′ said "the responses are constant"."""
    r = domain_sheet["responses"].values.copy()
    r[4, :] = np.nan
    r[7, 3] = np.inf
    ds = _sheet(r, {"domain": DOMAINS, "orientation_deg": np.resize([0.0, 45.0, 90.0, 135.0], 30)})
    msg = r"needs finite responses; they hold NaN/Inf in 2 of 30 stimuli \(stimulus_id \['s0004', 's0007'\]\)"
    calls = {
        "d′": lambda **kw: analysis.dprime(ds, target="faces", **kw),
        "t": lambda **kw: analysis.tstat(ds, target="faces", **kw),
        "selectivity": lambda **kw: analysis.selectivity(ds, **kw),
        "tuning_curves": lambda **kw: analysis.tuning_curves(ds, **kw),
        "rdm": lambda **kw: analysis.rdm(ds, **kw),
        "entropy": lambda **kw: analysis.entropy(ds, **kw),
        "percentage_of_zeros": lambda **kw: analysis.percentage_of_zeros(ds, **kw),
        "expert_units": lambda **kw: analysis.expert_units(ds, by="domain", **kw),
        "smoothness": lambda **kw: analysis.smoothness(ds, **kw),
    }
    clean = ds.isel(stimulus=np.setdiff1d(np.arange(30), [4, 7]))
    for name, call in calls.items():
        with pytest.raises(cx.SheetError, match=f"{name} " + msg):
            call()
        with pytest.warns(RuntimeWarning, match="left out 2 stimuli with NaN/Inf"):
            got = call(skipna=True)
        expected = {"d′": lambda: analysis.dprime(clean, target="faces"),
                    "t": lambda: analysis.tstat(clean, target="faces"),
                    "selectivity": lambda: analysis.selectivity(clean),
                    "tuning_curves": lambda: analysis.tuning_curves(clean),
                    "rdm": lambda: analysis.rdm(clean), "entropy": lambda: analysis.entropy(clean),
                    "percentage_of_zeros": lambda: analysis.percentage_of_zeros(clean),
                    "expert_units": lambda: analysis.expert_units(clean, by="domain"),
                    "smoothness": lambda: analysis.smoothness(clean)}[name]()
        for var in ([got.name] if hasattr(got, "dims") and not hasattr(got, "data_vars") else list(got.data_vars)):
            a = np.asarray((got if not hasattr(got, "data_vars") else got[var]).values)
            b = np.asarray((expected if not hasattr(expected, "data_vars") else expected[var]).values)
            if a.dtype.kind == "f":
                np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9, err_msg=name)
            else:
                assert (a == b).all(), name
    # analyses without a skipna option still name the problem (and say how to drop the stimuli)
    with pytest.raises(cx.SheetError, match="the analysis " + msg + r".*ds\.isel\(stimulus="):
        analysis.orientation_map(ds.assign_coords(sf_cpd=("stimulus", np.ones(30))))
    # a unit that is NaN throughout: no stimulus is usable, so the message says to drop the unit
    r2 = domain_sheet["responses"].values.copy()
    r2[:, 5] = np.nan
    with pytest.raises(cx.SheetError, match=r"NaN/Inf in every stimulus.*unit_id \[5\].*ds\.isel\(unit="):
        analysis.dprime(_sheet(r2, {"domain": DOMAINS}), target="faces", skipna=True)


def test_nonfinite_found_in_the_same_pass_on_dask_sheets(domain_sheet):
    r = domain_sheet["responses"].values.copy()
    r[4, 2] = np.nan
    ds = _sheet(r, {"domain": DOMAINS}, validate=False).chunk({"stimulus": 7, "unit": 16})
    with pytest.raises(cx.SheetError, match=r"NaN/Inf in 1 of 30 stimuli \(stimulus_id \['s0004'\]\) and 1 of 40"):
        analysis.dprime(ds, target="faces")
    with pytest.warns(RuntimeWarning, match="left out 1 stimuli"):
        d = analysis.dprime(ds, target="faces", skipna=True)
    np.testing.assert_allclose(d.values, analysis.dprime(_sheet(np.delete(r, 4, 0), {"domain": np.delete(DOMAINS, 4)}),
                                                         target="faces").values, rtol=1e-6)
    with pytest.raises(cx.SheetError, match="rdm needs finite"):
        analysis.rdm(ds)
