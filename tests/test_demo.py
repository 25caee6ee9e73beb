"""`cortexsim demo --quick` end to end: held-out recording, statistics, exports, comparison, report."""
from __future__ import annotations

import json
import math
import re

import nibabel as nib
import numpy as np
import pytest

import cortexsim as cx
from cortexsim.cli import main
from cortexsim.study.demo import CONTROL, MODELS, TOPOGRAPHIC

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--quick", "--out", str(out), "--no-progress"]) == 0
    return out


def _numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield obj


def test_report_numbers_are_finite_and_ws_is_more_topographic_than_its_control(demo):
    summary = json.loads((demo / "summary.json").read_text())
    rows = summary["models"]
    assert set(rows) == set(MODELS)
    assert all(math.isfinite(v) for v in _numbers(rows))
    ws, ctrl = rows[TOPOGRAPHIC], rows[CONTROL]
    # Same seeds, same initial weights and batch order: only the WS term differs.
    assert ws["training"]["seed"] == ctrl["training"]["seed"] and ws["training"]["steps"] == ctrl["training"]["steps"]
    # Measured (seed 0, 3 epochs): clustering index 0.36 vs -0.10, Moran's I 0.18 vs -0.03, neighbour r 0.25 vs -0.02.
    assert ws["clustering_index"] > ctrl["clustering_index"] and ws["clustering_p_value"] < 0.05
    assert ws["morans_i_mean"] > ctrl["morans_i_mean"] + 0.1
    assert ws["neighbour_correlation"] > max(ctrl["neighbour_correlation"], ws["neighbour_correlation_shuffled"]) + 0.1
    assert summary["headline"]["topographic_exceeds_control"] is True
    for row in rows.values():  # every model learnt the held-out digits well above chance (0.1)
        assert row["heldout_accuracy"] > 0.3
    # The run's own wall and CPU time are reported (issue 15: --quick ≤ 60 s on 2 idle cores).
    assert 0 < summary["seconds"] and 0 < summary["cpu_seconds"]


def test_sheets_hold_only_held_out_scans_and_each_run_one_checkpoint(demo):
    manifest = json.loads((demo / "manifest.json").read_text())
    held = set(manifest["data"]["heldout_scans"])
    assert len(held) == manifest["data"]["n_heldout"] == 449 and manifest["data"]["n_train"] == 1797 - 449
    for label in MODELS:
        ds = cx.open_sheet(demo / "sheets" / f"{label}.h5")
        assert set(ds.sklearn_index.values.astype(int).tolist()) == held
        assert ds.sizes["unit"] == 121 and ds.sizes["stimulus"] == 449
        assert sorted(p.name for p in (demo / "runs" / label).glob("*.pt")) == ["model.pt"]
    assert not list(demo.rglob("checkpoints"))


def test_report_is_regenerated_from_the_sheets_alone(demo, tmp_path):
    summary = json.loads((demo / "summary.json").read_text())
    sheets = [str(demo / "sheets" / f"{label}.h5") for label in MODELS]
    assert main(["report", *sheets, "--labels", ",".join(MODELS), "--n-perm", str(summary["n_perm"]),
                 "--seed", str(summary["seed"]), "--out", str(tmp_path), "--no-progress"]) == 0
    again = json.loads((tmp_path / "summary.json").read_text())
    for label in MODELS:
        for key in ("clustering_index", "clustering_p_value", "morans_i_mean", "heldout_accuracy", "selective_units"):
            assert again["models"][label][key] == pytest.approx(summary["models"][label][key]), (label, key)
    page = (demo / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') >= 5  # 4 Sheet panels + the training curves
    assert not re.search(r'(src|href)="(https?:)?//', page)
    for command in summary["commands"]:  # every step's command line is on the page
        assert command["command"].split()[1] in {"demo", "export", "compare", "report", "info"}
        assert command["command"].replace("'", "&#x27;") in page


def test_exports_open_in_nibabel_and_the_comparison_is_finite(demo):
    nii = sorted((demo / "export" / TOPOGRAPHIC).glob("*.nii.gz"))
    assert nii, list((demo / "export").rglob("*"))
    img = nib.load(nii[0])
    assert int(img.header["sform_code"]) == 2 and np.isfinite(np.asarray(img.dataobj)).any()
    gii = sorted((demo / "export" / TOPOGRAPHIC).glob("*.gii"))
    assert any(p.name.endswith(".surf.gii") for p in gii) and len(gii) >= 2
    surf = nib.load(next(p for p in gii if p.name.endswith(".surf.gii")))
    assert surf.darrays[0].data.shape == (121, 3)
    row = json.loads((demo / "compare" / "comparison.json").read_text())["rows"][0]
    assert math.isfinite(row["pearson_r"]) and 0 <= row["p_value"] <= 1
    summary = json.loads((demo / "summary.json").read_text())
    assert summary["compare"]["table"]["pearson_r"] == pytest.approx(row["pearson_r"])


def test_demo_refuses_an_unknown_stage(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--only", "bogus"]) == 2
    assert "unknown stage(s) ['bogus']" in capsys.readouterr().err
