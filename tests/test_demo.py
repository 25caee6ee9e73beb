"""`cortexsim demo` end to end (few training steps, few swap rounds, tiny images)."""
from __future__ import annotations

import json

import matplotlib.image as mpimg
import numpy as np
import pytest

import cortexsim as cx
from cortexsim import analysis
from cortexsim.adapters.trainer import load_trained
from cortexsim.cli import main
from cortexsim.demo import run_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--out", str(out), "--train-steps", "3", "--swap-rounds", "20", "--image-size", "32"]) == 0
    return out


@pytest.mark.filterwarnings("ignore:d′ is undefined")  # dead units of a barely trained net
def test_demo_writes_sheets_map_and_a_summary_reproducible_from_them(demo):
    summary = json.loads((demo / "summary.json").read_text())
    ds = cx.open_sheet(demo / "sheet.h5")
    base = cx.open_sheet(demo / "baseline_sheet.h5")
    assert summary["stimuli"] == ds.sizes["stimulus"] == base.sizes["stimulus"] == 120
    # ResNet-18 with the CIFAR stem at 32 px: layer2.0 is 128 × 16 × 16, layer4.1 is 512 × 4 × 4.
    assert summary["units"] == {"V1": 128 * 16 * 16, "IT": 512 * 4 * 4}
    assert {"faces", "characters", "objects", "places"} <= set(summary["domains"])
    d = analysis.dprime(ds, by="domain", target="faces", undefined="nan")
    it = d.where(d.area == "IT", drop=True)
    assert summary["it_face_units_dprime_gt_1"] == int((it.values > 1).sum())
    assert summary["it_max_face_dprime"] == np.nanmax(it.values)
    assert summary["it_dprime_morans_i"] == round(float(analysis.morans_i(it, k=8, permutations=199, seed=0)["I"]), 4)
    img = mpimg.imread(demo / "faces_dprime.png")
    assert img.ndim == 3 and img.shape[1] > 2 * img.shape[0] * 0.9 and img[..., :3].std() > 0.05  # two maps
    for run in ("baseline", "tdann"):
        assert (demo / run / "model.pt").exists() and (demo / run / "log.jsonl").exists()


def test_demo_sheets_carry_each_networks_own_positions(demo):
    ds = cx.open_sheet(demo / "sheet.h5")
    base = cx.open_sheet(demo / "baseline_sheet.h5")
    tdann = load_trained(demo / "tdann")
    for area, module in (("V1", "net.layer2.0"), ("IT", "net.layer4.1")):
        np.testing.assert_allclose(ds.cortex.area(area).cortex.positions, tdann.placements[module].positions, atol=1e-5)
    # Same retinotopic slots, but the TDANN's units were swapped on the baseline's responses.
    p_t, p_b = ds.cortex.area("IT").cortex.positions, base.cortex.area("IT").cortex.positions
    assert not np.allclose(p_t, p_b)
    np.testing.assert_allclose(np.sort(p_t, axis=0), np.sort(p_b, axis=0), atol=1e-5)


def test_demo_refuses_zero_training_steps(tmp_path):
    with pytest.raises(ValueError, match="train_steps"):
        run_demo(tmp_path, train_steps=0)
