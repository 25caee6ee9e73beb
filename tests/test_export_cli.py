"""``cortexsim export`` / ``cortexsim compare`` on Sheet files and on the units_<area>.nc of ``cortexsim analyze``."""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

import cortexsim as cx
from cortexsim.cli import main


@pytest.fixture(scope="module")
def sheet_path(tmp_path_factory):
    """A 30 × 30 unit IT sheet (1 mm) whose disc of units prefers faces, plus a small V1."""
    rng = np.random.default_rng(0)
    axis = np.arange(30.0)
    pos = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    face_units = np.hypot(pos[:, 0] - 10, pos[:, 1] - 18) < 6
    domain = ["faces"] * 6 + ["objects"] * 6 + ["places"] * 6
    r = rng.normal(size=(18, len(pos)))
    r[:6, face_units] += 3.0
    v1 = rng.normal(size=(18, 16))
    ds = cx.make_sheet(np.c_[r, v1].astype(np.float32), x_mm=np.r_[pos[:, 0], np.arange(16.0) % 4],
                       y_mm=np.r_[pos[:, 1], np.arange(16) // 4 * 1.0], area=["IT"] * len(pos) + ["V1"] * 16,
                       stimuli={"domain": domain})
    path = tmp_path_factory.mktemp("sheet") / "sheet.h5"
    cx.save_sheet(ds, path)
    return path


def test_export_sheet_dprime_and_preference(sheet_path, tmp_path, capsys):
    from cortexsim.analysis.selectivity import dprime

    out = tmp_path / "exp"
    assert main(["export", str(sheet_path), "--what", "dprime,preference", "--target", "faces", "--area", "IT",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    names = sorted(p.split("/")[-1] for p in printed)
    assert names == sorted(["IT_dprime.nii.gz", "IT_dprime.json", "IT_dprime_nifti.png", "IT_dprime.func.gii",
                            "IT.surf.gii", "IT_dprime_gifti.png", "IT_preference.nii.gz", "IT_preference.json",
                            "IT_preference_LUT.txt", "IT_preference_nifti.png", "IT_preference.label.gii",
                            "IT_preference_gifti.png"])
    it = cx.open_sheet(sheet_path).cortex.area("IT")
    want = dprime(it, "domain", "faces").values
    img = nib.load(out / "IT_dprime.nii.gz")
    i, j = it.x_mm.values.astype(int), it.y_mm.values.astype(int)  # 1 mm units from 0: voxel index = mm
    np.testing.assert_allclose(np.asarray(img.dataobj)[i, j, 0], want, rtol=1e-5)
    side = json.loads((out / "IT_preference.json").read_text())
    labels = np.asarray(nib.load(out / "IT_preference.nii.gz").dataobj)[i, j, 0]
    faces = [int(k) for k, v in side["labels"].items() if v["name"] == "faces"][0]
    np.testing.assert_array_equal(labels == faces, want > 2.0)  # the preference map: d′ > 2 (and the largest)


def test_export_and_compare_the_units_file_of_analyze(sheet_path, tmp_path, capsys):
    an = tmp_path / "an"
    assert main(["analyze", str(sheet_path), "--area", "IT", "--what", "selectivity,preference", "--formats", "",
                 "--out", str(an)]) == 0
    out = tmp_path / "exp"
    assert main(["export", str(an / "units_IT.nc"), "--what", "dprime_faces", "--format", "nifti", "--no-png",
                 "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["IT_dprime_faces.json", "IT_dprime_faces.nii.gz"]
    capsys.readouterr()
    cmp = tmp_path / "cmp"
    # the Sheet's own d′ map against the exported file: the same map, r = 1, Dice 1
    assert main(["compare", str(sheet_path), str(out / "IT_dprime_faces.nii.gz"), "--target", "faces", "--area", "IT",
                 "--n-perm", "30", "--threshold", "2", "--out", str(cmp)]) == 0
    row = pd.read_csv(cmp / "comparison.csv").iloc[0]
    assert row.pearson_r > 0.999 and row.dice == pytest.approx(1.0) and row.model_n_patches == 1
    assert (cmp / "comparison.png").exists() and json.loads((cmp / "comparison.json").read_text())["rows"]
    assert main(["export", str(an / "units_IT.nc"), "--what", "t_faces", "--out", str(out)]) == 2
    assert "no variable ['t_faces']" in capsys.readouterr().err


def test_compare_sheet_with_sheet_uses_the_model_side_options(sheet_path, tmp_path, capsys):
    """A Sheet target is read with --area / --target / --what of the model side (no --target-* or --match)."""
    import shutil

    twin = tmp_path / "twin.h5"
    shutil.copy(sheet_path, twin)
    cmp = tmp_path / "cmp"
    assert main(["compare", str(sheet_path), str(twin), "--area", "IT", "--target", "faces", "--n-perm", "20",
                 "--threshold", "2", "--out", str(cmp)]) == 0
    table = pd.read_csv(cmp / "comparison.csv")
    assert len(table) == 1 and table.pearson_r.iloc[0] > 0.999 and table.dice.iloc[0] == pytest.approx(1.0)
    # an explicit --target-area still wins over --area: an unknown one is a clear error naming it
    assert main(["compare", str(sheet_path), str(twin), "--area", "IT", "--target-area", "nope", "--target", "faces",
                 "--out", str(cmp)]) == 2
    assert "nope" in capsys.readouterr().err
