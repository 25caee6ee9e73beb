"""One signature, one vocabulary: validate_params (shared constraints, old names for one release),
fill_doc, the Pearson-normalisation helper, and the shared output names (issue 14)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

import cortexsim as cx
from cortexsim import analysis
from cortexsim.analysis._common import PEARSON_RTOL, pearson_normalise, undefined_norm
from cortexsim.analysis._params import DOCS, Interval, fill_doc, validate_params
from cortexsim.errors import ParameterError, ParameterTypeError

SIDE = 8


def _sheet(seed: int = 0) -> xr.Dataset:
    """16 stimuli (8 faces, 8 places) × 64 units on an 8×8 grid; the left half prefers faces."""
    rng = np.random.default_rng(seed)
    row, col = np.divmod(np.arange(SIDE * SIDE), SIDE)
    faces = np.repeat([1.0, 0.0], 8)
    r = rng.normal(size=(16, SIDE * SIDE)) + 3.0 * np.outer(faces, col < SIDE // 2) + 3.0 * np.outer(1 - faces, col >= SIDE // 2)
    return cx.make_sheet(r.astype(np.float32), x_mm=col.astype(float), y_mm=row.astype(float), row=row, col=col,
                         stimuli={"domain": np.repeat(["faces", "places"], 8)})


@validate_params({"n_perm": [Interval(1, None, integer=True)]}, renamed={"permutations": "n_perm", "ds": "obj"},
                 positional=("by", "n_perm"))
def _toy(obj, *, by: str = "domain", n_perm: int = 5, seed: int = 0, area=None):
    return obj, by, n_perm, seed, area


def test_shared_constraints_apply_wherever_the_name_appears():
    assert _toy(1, by="x", n_perm=3, seed=2, area="IT") == (1, "x", 3, 2, "IT")
    with pytest.raises(ParameterError, match=r"_toy: seed must be in \[0, inf\); got -1\."):
        _toy(1, seed=-1)  # SHARED: seed is a non-negative integer in every analysis
    with pytest.raises(ParameterTypeError, match=r"_toy: area must be None or a str; got 3\."):
        _toy(1, area=3)
    with pytest.raises(ParameterTypeError, match="_toy: by must be a str"):
        _toy(1, by=["domain"])
    with pytest.raises(ParameterError, match=r"n_perm must be in \[1, inf\); got 0"):  # the function's own wins
        _toy(1, n_perm=0)
    with pytest.raises(ParameterTypeError, match="unexpected keyword argument 'n_perms'"):
        _toy(1, n_perms=3)
    assert issubclass(ParameterError, ValueError) and issubclass(ParameterTypeError, TypeError)


def test_old_keywords_and_old_positions_warn_once_and_still_work():
    with pytest.warns(FutureWarning, match=r"_toy\(permutations=...\) is deprecated .* use n_perm="):
        assert _toy(1, permutations=7)[2] == 7
    with pytest.warns(FutureWarning, match=r"_toy\(ds=...\) is deprecated .* use obj="):
        assert _toy(ds=4)[0] == 4
    with pytest.warns(FutureWarning, match=r"_toy: passing by, n_perm by position is deprecated.*use by=, n_perm="):
        assert _toy(1, "numerosity", 9) == (1, "numerosity", 9, 0, None)
    with pytest.raises(ParameterTypeError, match="pass n_perm= only"):
        _toy(1, n_perm=3, permutations=4)
    with pytest.raises(ParameterTypeError, match="given both by position and by keyword"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            _toy(1, "x", by="y")
    with pytest.raises(ParameterTypeError, match="takes 3 positional arguments at most; got 4"):
        _toy(1, "x", 3, 4)


def test_every_public_sheet_analysis_takes_obj_first_and_shared_keywords_by_keyword_only():
    import inspect

    names = ["dprime", "tstat", "selectivity", "class_mean_dprime", "preference_map", "preference_from_selectivity",
             "number_map", "orientation_map", "clustering_index", "topography_index", "preference_codes", "patches",
             "patches_by_category", "pinwheels", "smoothness", "morans_i", "neighbour_graph", "neighbour_edges",
             "group_moments", "rdm", "entropy", "percentage_of_zeros", "expert_units", "tuning_curves"]
    for name in names:
        params = inspect.signature(getattr(analysis, name)).parameters
        first = next(iter(params))
        assert first == "obj", (name, first)
        for shared in ("by", "area", "n_perm", "seed", "positions"):
            if shared in params:
                assert params[shared].kind is inspect.Parameter.KEYWORD_ONLY, (name, shared)


def test_old_call_forms_of_the_analyses_give_the_same_numbers():
    ds = _sheet()
    new = analysis.dprime(ds, by="domain", target="faces")
    with pytest.warns(FutureWarning, match=r"dprime: passing by, target by position is deprecated"):
        old = analysis.dprime(ds, "domain", "faces")
    np.testing.assert_array_equal(old.values, new.values)
    pref = analysis.preference_map(ds, by="domain", threshold=1.0)
    with pytest.warns(FutureWarning, match=r"preference_map\(ds_or_sel=...\)"):
        assert (analysis.preference_map(ds_or_sel=ds, by="domain", threshold=1.0) == pref).all()
    ci = analysis.clustering_index(pref, n_perm=3, seed=1)
    with pytest.warns(FutureWarning, match="clustering_index: passing n_perm, seed by position"):
        old_ci = analysis.clustering_index(pref, 3, 1)
    assert float(old_ci["index"]) == float(ci["index"])
    with pytest.raises(ParameterError, match=r"preference_map: stat must be one of \['dprime', 't', 'class_means'\]"):
        analysis.preference_map(ds, by="domain", stat="z")
    with pytest.raises(ParameterError, match=r"smoothness: n_pairs must be in \[1, inf\); got 0"):
        analysis.smoothness(ds, n_pairs=0)


def test_category_is_the_dim_of_per_category_outputs_class_still_selects():
    ds = _sheet()
    pref = analysis.preference_map(ds, by="domain", threshold=1.0)
    ci = analysis.clustering_index(pref, n_perm=2, seed=0)
    assert ci["observed_per_category"].dims == ("category",) and ci["null_per_category"].dims == ("perm", "category")
    assert ci["category"].values.tolist() == ["faces", "places"]
    # 32 units in one 8×4 block per category: one component each, mean size 32
    assert ci["observed_per_category"].values.tolist() == [32.0, 32.0]
    assert int(ci["n_components"].sel({"class": "places"})) == 1  # the previous release's name, indexed
    ex = analysis.expert_units(ds, by="domain", threshold=1.0)
    assert ex["n_experts"].dims == ("category",)
    assert int(ex["n_experts"].sel(category="faces")) == int(ex["n_experts"].sel({"class": "faces"}))


def test_pearson_normalise_gives_pearson_r_and_one_constant_rule():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 40)) * np.array([1e-20, 1.0, 1e3, 7.0, 1e20])[:, None]
    z, ok = pearson_normalise(x, axis=1)
    assert ok.all() and z.dtype == np.float64
    np.testing.assert_allclose(z @ z.T, np.corrcoef(x), rtol=1e-12, atol=1e-14)  # scale-free: 1e-20 and 1e20 rows too
    c, _ = pearson_normalise(x, axis=1, center=False)
    cos = (x @ x.T) / np.outer(np.linalg.norm(x, axis=1), np.linalg.norm(x, axis=1))
    np.testing.assert_allclose(c @ c.T, cos, rtol=1e-12)
    # hand-computed: [1, 2, 3] centres to [-1, 0, 1], norm sqrt(2)
    np.testing.assert_allclose(pearson_normalise(np.array([1.0, 2.0, 3.0]))[0], np.array([-1, 0, 1]) / np.sqrt(2))
    # a constant float32 column (value 0.1, not exact in binary) is constant, not rounding noise
    block = np.stack([np.full(9, 0.1, np.float32), np.arange(9, dtype=np.float32), np.zeros(9, np.float32)], axis=1)
    zf, okf = pearson_normalise(block, axis=0, dtype=np.float32)
    assert okf.tolist() == [False, True, False] and zf.dtype == np.float32
    assert np.isnan(zf[:, 0]).all() and np.isnan(zf[:, 2]).all()
    assert float(np.sum(zf[:, 1].astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-6)
    # the rule: norm <= PEARSON_RTOL * sqrt(n) * max|x|
    assert undefined_norm(0.0, 0.0, 4) and undefined_norm((PEARSON_RTOL * 2 * 5.0) ** 2, 5.0, 4)
    assert not undefined_norm((PEARSON_RTOL * 2 * 5.0 * 1.01) ** 2, 5.0, 4)


def test_constant_stimulus_pattern_is_undefined_for_the_rdm_and_the_rsm_alike():
    ds = _sheet()
    r = np.asarray(ds["responses"].values).copy()
    r[3] = 0.25  # one stimulus with the same response in every unit
    flat = ds.copy(data={"responses": ds["responses"].copy(data=r)})
    with pytest.raises(cx.SheetError, match="constant response pattern"):
        analysis.rdm(flat)
    from cortexsim.analysis.robustness import class_weight_rsm
    import torch

    w = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5], [3.0, 1.0, 2.0]])
    with pytest.raises(cx.errors.UndefinedStatisticError, match="constant"):
        class_weight_rsm(w, "correlation")
    cos = class_weight_rsm(w, "cosine")  # no centring: the flat row is a direction like any other
    assert cos[0, 1] == pytest.approx(6 * 0.5 / (np.sqrt(14) * np.sqrt(0.75)))


def test_fill_doc_fills_shared_parameter_text():
    @fill_doc
    def f(obj, *, n_perm=0):
        """Doc.

        Parameters
        ----------
        %(obj)s
        %(n_perm)s
        """

    assert DOCS["n_perm"].split("\n")[1].strip() in f.__doc__
    assert "        obj : Sheet (xarray.Dataset) or per-unit DataArray" in f.__doc__
    assert "%(" not in analysis.morans_i.__doc__ and "%(" not in analysis.clustering_index.__doc__


def test_shared_parameters_read_alike_in_every_analysis():
    """%(area)s, %(skipna)s ... are filled from one table, so the text is the same everywhere."""
    filled = {"area": ["patches", "pinwheels", "entropy", "percentage_of_zeros", "expert_units", "tuning_curves"],
              "skipna": ["dprime", "rdm", "entropy", "percentage_of_zeros", "expert_units", "tuning_curves"],
              "sheet": ["dprime", "selectivity", "number_map", "rdm", "entropy", "expert_units", "tuning_curves"],
              "by": ["dprime", "selectivity", "preference_map", "number_map", "expert_units", "tuning_curves"],
              "moments": ["dprime"], "positions": ["patches"], "none": ["preference_map"], "obj": ["neighbour_graph"]}
    for key, names in filled.items():
        for name in names:
            doc = getattr(analysis, name).__doc__
            assert "%(" not in doc, name
            assert all(line in doc for line in DOCS[key].split("\n")[1:]), (name, key)
