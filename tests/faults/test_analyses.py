"""In-memory fuzz of the analyses with hypothesis-generated Sheets (issue 13, points 6, 11).

Every outcome must be a result or a :class:`cortexsim.CortexsimError` with a message — never a
``ValueError``/``IndexError``/``TypeError`` from numpy, scipy or pandas. Values are drawn with NaN,
±Inf, constants, huge numbers and duplicated positions; labels as strings or numbers.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cortexsim as cx
from cortexsim import analysis

_VALUES = st.sampled_from([0.0, 1.0, -1.0, 1e-30, 1e30, 3.5, np.nan, np.inf, -np.inf])


@st.composite
def sheets(draw):
    n_stim = draw(st.integers(1, 10))
    side = draw(st.integers(1, 4))
    n_units = side * draw(st.integers(1, 4))
    kind = draw(st.sampled_from(["normal", "constant", "special", "onehot"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    r = rng.normal(size=(n_stim, n_units))
    if kind == "constant":
        r[:] = draw(_VALUES.filter(np.isfinite))
    elif kind == "special":
        for _ in range(draw(st.integers(1, 4))):
            r[draw(st.integers(0, n_stim - 1)), draw(st.integers(0, n_units - 1))] = draw(_VALUES)
    elif kind == "onehot":
        r[:, : n_units // 2] = 0.0
    row, col = np.divmod(np.arange(n_units), side)
    spacing = draw(st.sampled_from([1e-3, 0.5, 1.0, 1e4]))
    x, y = col * spacing, row * spacing
    if draw(st.booleans()):
        x = np.zeros(n_units)  # every unit on one line (or one point)
    labels = draw(st.sampled_from([["faces", "places"], ["faces"], [1, 2, 3], ["a", "b", "c", "d"]]))
    domain = np.resize(np.asarray(labels), n_stim)
    ori = np.resize([0.0, 45.0, 90.0, 135.0], n_stim)
    area = np.repeat(["V1", "IT"], [n_units // 2, n_units - n_units // 2]) if draw(st.booleans()) else "IT"
    return cx.make_sheet(r.astype(np.float32), x_mm=x, y_mm=y, row=row, col=col, area=area,
                         stimuli={"domain": domain, "orientation_deg": ori, "sf_cpd": np.ones(n_stim)},
                         validate=False)


_CALLS = {
    "dprime": lambda ds: analysis.dprime(ds, by="domain", target=ds.domain.values[0]),
    "tstat": lambda ds: analysis.tstat(ds, by="domain", target=ds.domain.values[0]),
    "selectivity": lambda ds: analysis.selectivity(ds, by="domain"),
    "preference_map": lambda ds: analysis.preference_map(ds, by="domain"),
    "tuning_curves": lambda ds: analysis.tuning_curves(ds),
    "orientation_map": lambda ds: analysis.orientation_map(ds),
    "rdm": lambda ds: analysis.rdm(ds),
    "rdm_by": lambda ds: analysis.rdm(ds, by="domain"),
    "entropy": lambda ds: analysis.entropy(ds),
    "percentage_of_zeros": lambda ds: analysis.percentage_of_zeros(ds),
    "expert_units": lambda ds: analysis.expert_units(ds, by="domain"),
    "smoothness": lambda ds: analysis.smoothness(ds, area=str(ds.area.values[0])),
    "morans_i": lambda ds: analysis.morans_i(analysis.tuning_curves(ds).isel(orientation_deg=0), k=1),
    "validate_sheet": lambda ds: cx.validate_sheet(ds),
}


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ds=sheets(), name=st.sampled_from(sorted(_CALLS)))
def test_analyses_give_results_or_cortexsim_errors(ds, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # counted and worded by the analyses themselves
        try:
            _CALLS[name](ds)
        except cx.CortexsimError as exc:
            assert str(exc) and "Traceback" not in str(exc)


@st.composite
def specs(draw):
    """make_sheet arguments, many of them wrong: ragged, strings, 0/5-D, wrong lengths, mixed labels."""
    n_stim, n_units = draw(st.integers(0, 5)), draw(st.integers(0, 5))
    shape_kind = draw(st.sampled_from(["ok", "ragged", "str", "1d", "5d", "none", "bool", "object"]))
    r = np.ones((n_stim, n_units), np.float32)
    resp = {"ok": r, "ragged": [[1.0] * n_units, [1.0] * (n_units + 1)], "str": [["a"] * n_units] * n_stim,
            "1d": np.ones(n_units), "5d": np.ones((n_stim, n_units, 1, 1, 1)), "none": None, "bool": r > 0,
            "object": r.astype(object)}[shape_kind]
    n_pos = draw(st.sampled_from([n_units, max(n_units - 1, 0), n_units + 1]))
    x = draw(st.sampled_from([np.arange(n_pos, dtype=float), ["a"] * n_pos, [np.nan] * n_pos, [1e300] * n_pos]))
    stim = draw(st.sampled_from([None, {"domain": np.resize(np.array([1, "a"], dtype=object), n_stim)},
                                 {"domain": ["x"] * (n_stim + 1)}, {"stimulus_id": ["s"] * n_stim}]))
    area = draw(st.sampled_from(["IT", np.arange(n_units), None]))
    return dict(responses=resp, x_mm=x, y_mm=np.zeros(len(x)), stimuli=stim, **({} if area is None else {"area": area}))


@settings(max_examples=300, deadline=None)
@given(spec=specs())
def test_make_sheet_specs_give_sheets_or_sheet_errors(spec, tmp_path_factory):
    """Before the fix 65 of 250 specs leaked numpy errors (ragged lists, str positions, 5-D responses)."""
    try:
        ds = cx.make_sheet(**spec)
    except cx.SheetError as exc:
        assert str(exc)
        return
    cx.validate_sheet(ds)  # what make_sheet returns is a valid Sheet, and it saves
    path = cx.save_sheet(ds, tmp_path_factory.mktemp("spec") / "s.h5")
    assert cx.open_sheet(path).sizes == ds.sizes
