"""analysis.run / Report / the registry: values equal the single-analysis API, save() = the CLI's files."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import xarray as xr

import cortexsim as cx
from cortexsim import analysis
from cortexsim.analysis.cli import main
from cortexsim.analysis.registry import _REGISTRY, analysis_names, register_analysis
from cortexsim.errors import ParameterError, ParameterTypeError, SheetError

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.fixture(scope="module")
def sheet():
    """One 12×12 area with a face quadrant; faces/objects/places, 8 stimuli each."""
    rng = np.random.default_rng(1)
    side = 12
    row, col = np.divmod(np.arange(side * side), side)
    r = rng.normal(size=(24, side * side))
    r[:8][:, (row < 6) & (col < 6)] += 3.0
    r[8:16][:, row >= 6] += 3.0
    return cx.make_sheet(r.astype(np.float32), x_mm=col * 1.0, y_mm=row * 1.0, row=row, col=col,
                         area=np.repeat("IT", side * side), stimuli={"domain": np.repeat(["faces", "objects", "places"], 8)})


def test_run_equals_the_single_analyses(sheet):
    rep = analysis.run(sheet, what=["selectivity", "preference", "clustering"], n_perm=9, seed=4)
    pref = analysis.preference_map(sheet, by="domain", threshold=2.0)
    ci = analysis.clustering_index(pref, n_perm=9, seed=4)
    xr.testing.assert_identical(rep["IT", "preference"], pref)
    np.testing.assert_array_equal(rep["clustering"]["null"].values, ci["null"].values)  # one area: name alone
    assert rep.summary["areas"]["IT"]["clustering"]["p_value"] == pytest.approx(float(ci["p_value"]))
    # the per-category d′ maps: one per category, equal to dprime(target=c)
    for c in ("faces", "objects", "places"):
        np.testing.assert_allclose(rep.maps["IT"][f"dprime_{c}"].values,
                                   analysis.dprime(sheet, by="domain", target=c).values, rtol=1e-6)
    assert rep.summary["analyses"] == ["selectivity", "preference", "clustering"] and not rep.errors


def test_save_writes_what_the_cli_writes(sheet, tmp_path):
    path = cx.save_sheet(sheet, tmp_path / "s.h5")
    assert main([str(path), "--what", "preference,clustering,graph", "--n-perm", "5", "--formats", "png",
                 "--out", str(tmp_path / "cli")]) == 0
    rep = analysis.run(cx.open_sheet(path), "preference,clustering,graph", n_perm=5)
    figures = rep.save(tmp_path / "api", formats=["png"])
    cli = json.loads((tmp_path / "cli" / "summary.json").read_text())
    api = json.loads((tmp_path / "api" / "summary.json").read_text())
    assert api["areas"] == cli["areas"] and api["figures"] == cli["figures"] == ["IT_preference.png", "IT_clustering_null.png"]
    assert [p.name for p in figures] == api["figures"]
    assert sorted(p.name for p in (tmp_path / "api").iterdir()) == sorted(p.name for p in (tmp_path / "cli").iterdir())
    u_cli = xr.open_dataset(tmp_path / "cli" / "units_IT.nc")
    u_api = xr.open_dataset(tmp_path / "api" / "units_IT.nc")
    np.testing.assert_array_equal(u_cli["preference"].values, u_api["preference"].values)


def test_a_registered_analysis_runs_with_its_needs_and_outputs(sheet, tmp_path):
    calls = []

    @register_analysis("n_selective", needs=("category_selectivity",), coord="by", figure="plot_unit_map")
    def n_selective(ctx):
        calls.append(ctx.area)
        n = (ctx.need("category_selectivity") > ctx.p.threshold).sum("category").rename("n_selective")
        ctx.keep(n)
        ctx.map("n_selective", n)
        return {"max": int(n.max())}

    try:
        assert "n_selective" in analysis_names()
        rep = analysis.run(sheet, what="selectivity,n_selective", threshold=1.0)
        sel = analysis.selectivity(sheet, by="domain")
        assert rep.summary["areas"]["IT"]["n_selective"] == {"max": int((sel > 1.0).sum("category").max())}
        assert calls == ["IT"]
        rep.save(tmp_path, formats=["png"])
        assert (tmp_path / "IT_n_selective.png").stat().st_size > 1000
        assert "n_selective" in xr.open_dataset(tmp_path / "units_IT.nc")
        with pytest.raises(ParameterError, match="registered already"):
            register_analysis("n_selective")(lambda ctx: {})
    finally:
        _REGISTRY.pop("n_selective")


def test_parameters_are_checked_before_any_work(sheet):
    with pytest.raises(ParameterTypeError, match=r"unknown parameters \['permutations'\]"):
        analysis.run(sheet, what="clustering", permutations=5)
    with pytest.raises(ParameterError, match=r"n_perm must be in \[1, inf\)"):
        analysis.run(sheet, what="clustering", n_perm=0)
    with pytest.raises(ParameterError, match="connectivity must be one of \\[4, 8\\]"):
        analysis.run(sheet, what="clustering", connectivity=6)
    with pytest.raises(ParameterError, match=r"unknown analyses \['sparkles'\]"):
        analysis.run(sheet, what=["sparkles"])
    with pytest.raises(SheetError, match="no stimulus coord 'orientation_deg'"):
        analysis.run(sheet, what="orientation")
    rep = analysis.run(sheet, what="orientation,preference", strict=False)  # skipped with the reason
    assert rep.summary["skipped"] == {"orientation": "the Sheet has no stimulus coord 'orientation_deg'"}


def test_a_constant_map_fails_its_step_only(sheet):
    """Degenerate data raise UndefinedStatisticError; run() records it for that analysis and goes on."""
    from cortexsim.errors import UndefinedStatisticError

    flat = sheet.copy(data={"responses": np.ones_like(sheet["responses"].values)})
    with pytest.raises(UndefinedStatisticError, match="constant"):
        analysis.smoothness(flat)
    rep = analysis.run(flat, what="smoothness,preference,rsa")
    res = rep.summary["areas"]["IT"]
    assert "constant responses" in res["smoothness"]["error"] and "undefined for every unit" in res["preference"]["error"]
    assert set(rep.errors) == {"IT/smoothness", "IT/preference", "IT/rsa"}  # each recorded, none aborted the run
    assert rep.summary["analyses"] == ["smoothness", "preference", "rsa"]
