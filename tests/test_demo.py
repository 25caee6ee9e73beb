"""`cortexsim demo` end to end (few training steps, tiny images)."""
from __future__ import annotations

import json

import matplotlib.image as mpimg
import numpy as np

import cortexsim as cx
from cortexsim import analysis
from cortexsim.cli import main


def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--train-steps", "3", "--image-size", "32"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert str(out / "sheet.h5") in printed and str(out / "faces_dprime.png") in printed
    ds = cx.open_sheet(out / "sheet.h5")
    assert summary["stimuli"] == ds.sizes["stimulus"] == 120
    assert summary["units"] == {"V1": 128, "IT": 512}  # channel level: the regularised convs
    assert {"faces", "characters", "objects", "places"} <= set(summary["domains"])
    # the summary's numbers are reproducible from the saved Sheet
    d = analysis.dprime(ds, by="domain", target="faces", undefined="nan")
    it = d.where(d.area == "IT", drop=True)
    assert summary["it_face_units_dprime_gt_1"] == int((it.values > 1).sum())
    assert summary["it_max_face_dprime"] == np.nanmax(it.values)
    # IT units sit at the positions the topographic loss trained with (Poli 2-D grid)
    np.testing.assert_allclose(ds.cortex.area("IT").cortex.positions, cx.layout.grid2d(512))
    img = mpimg.imread(out / "faces_dprime.png")
    assert img.ndim == 3 and img.shape[0] > 100 and img[..., :3].std() > 0.05
    assert (out / "run" / "model.pt").exists() and (out / "run" / "log.jsonl").exists()
