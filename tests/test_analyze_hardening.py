"""`cortexsim analyze` friction a new user hit (issue 13, point 13): coords listed, patch defaults that fit
the sheet (or say why none), one warning naming the flag, titles naming area and category."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

import cortexsim as cx
from cortexsim.cli import main


def _blob_sheet(path, side_mm: float, n_side: int, radius_mm: float, jitter: bool = False, gain: float = 2.0,
                by: str = "domain"):
    """A sheet of ``n_side``² units over ``side_mm`` whose units within ``radius_mm`` of the centre prefer faces."""
    rng = np.random.default_rng(0)
    if jitter:
        pos = rng.uniform(0, side_mm, (n_side * n_side, 2))
    else:
        g = np.arange(n_side) * side_mm / (n_side - 1)
        pos = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    inside = np.hypot(*(pos - side_mm / 2).T) < radius_mm
    labels = np.repeat(["faces", "objects"], 20)
    r = rng.normal(size=(40, len(pos)))
    r[:20, inside] += gain
    ds = cx.make_sheet(r.astype(np.float32), x_mm=pos[:, 0], y_mm=pos[:, 1], area="IT", stimuli={by: labels})
    return cx.save_sheet(ds, path), np.pi * radius_mm**2


def _run(argv, capsys):
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_default_by_on_a_sheet_without_it_lists_the_coords(tmp_path, capsys):
    sheet, _ = _blob_sheet(tmp_path / "s.h5", 10, 12, 2, by="label_name")
    code, _, err = _run(["analyze", str(sheet), "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    (line,) = [ln for ln in err.splitlines() if ln.strip()]
    assert "no stimulus coord 'domain'" in line and "['label_name']" in line and "--by" in line


def test_patch_defaults_scale_with_a_small_sheet(tmp_path, capsys):
    """A 12.6 mm² face patch on a 10 mm sheet: TDANN's 100 mm² minimum (for its 70 mm VTC) finds nothing,
    the scaled defaults (σ 2.4·10/70 mm, 100·(10/70)² mm²) find it."""
    sheet, area = _blob_sheet(tmp_path / "s.h5", 10, 41, 2)
    out = tmp_path / "out"
    code, _, err = _run(["analyze", str(sheet), "--what", "patches", "--formats", "", "--out", str(out)], capsys)
    assert code == 0, err
    res = json.loads((out / "summary.json").read_text())["areas"]["IT"]["patches"]
    assert res["settings"]["sigma_mm"] == pytest.approx(2.4 * 10 / 70)
    assert res["settings"]["min_area_mm2"] == pytest.approx(100 * (10 / 70) ** 2)
    faces = res["category"].index("faces")
    assert res["count"][faces] == 1 and res["total_area_mm2"][faces] == pytest.approx(area, rel=0.35)
    assert res["count"][1 - faces] == 0 and "objects" in res["why_none"]
    # TDANN's own numbers, given explicitly: nothing, and the output says why
    code, _, err = _run(["analyze", str(sheet), "--what", "patches", "--formats", "", "--patch-sigma-mm", "2.4",
                         "--patch-min-area-mm2", "100", "--target", "faces", "--out", str(out)], capsys)
    res = json.loads((out / "summary.json").read_text())["areas"]["IT"]["patches"]
    assert code == 0 and res["count"] == 0
    assert re.search(r"smaller than --patch-min-area-mm2 100", res["why_none"]) or "peaks at" in res["why_none"]
    assert res["why_none"] in err


def test_a_jittered_sheet_finds_its_patch_whole(tmp_path, capsys):
    """At the nearest-neighbour pixel a jittered sheet is mostly empty pixels and a patch breaks into specks."""
    sheet, area = _blob_sheet(tmp_path / "s.h5", 20, 70, 4, jitter=True)
    out = tmp_path / "out"
    code, _, err = _run(["analyze", str(sheet), "--what", "patches", "--target", "faces", "--formats", "",
                         "--out", str(out)], capsys)
    res = json.loads((out / "summary.json").read_text())["areas"]["IT"]["patches"]
    assert code == 0 and res["count"] == 1, (res, err)
    assert res["total_area_mm2"] == pytest.approx(area, rel=0.35)


def test_no_selectivity_says_why_no_patch(tmp_path, capsys):
    sheet, _ = _blob_sheet(tmp_path / "s.h5", 10, 20, 2, gain=0.0)
    code, _, err = _run(["analyze", str(sheet), "--what", "patches", "--target", "faces", "--formats", "",
                         "--out", str(tmp_path / "out")], capsys)
    assert code == 0
    assert re.search(r"IT/patches faces: 0 patches: the smoothed t peaks at [-\d.]+, not above the threshold 4 "
                     r"\(lower it with --patch-threshold", err), err


def test_a_warning_is_printed_once_per_area_naming_the_flag(tmp_path, capsys):
    sheet, _ = _blob_sheet(tmp_path / "s.h5", 10, 12, 2)
    ds = cx.open_sheet(sheet).load()
    ds["responses"][:, :5] = 0.0  # five dead units: d′ and t of each category are undefined
    cx.save_sheet(ds, tmp_path / "dead.h5")
    code, _, err = _run(["analyze", str(tmp_path / "dead.h5"), "--what", "selectivity,preference,patches",
                         "--formats", "", "--out", str(tmp_path / "out")], capsys)
    assert code == 0, err
    warnings = [ln for ln in err.splitlines() if "warning" in ln]
    assert len(warnings) == 1, err
    assert warnings[0].startswith("cortexsim analyze: warning: IT: d′/t is undefined (zero variance) for 5 of 144")
    assert "--undefined raise" in warnings[0] and "undefined='raise'" not in err
    assert ".py:" not in err and "warnings.warn" not in err  # no source lines


def test_figure_titles_name_area_and_category(tmp_path, capsys):
    sheet, _ = _blob_sheet(tmp_path / "s.h5", 10, 41, 2)
    out = tmp_path / "out"
    code, _, err = _run(["analyze", str(sheet), "--what", "selectivity,preference,clustering,patches",
                         "--n-perm", "3", "--formats", "svg", "--out", str(out)], capsys)
    assert code == 0, err
    titles = {f.name: re.findall(r"<text[^>]*>([^<]*— [^<]*)</text>", f.read_text(encoding="utf-8"))
              for f in out.glob("*.svg")}
    (patch_title,) = titles["IT_patches_faces.svg"]
    assert patch_title.startswith("1 patch, ") and patch_title.endswith(" mm² — IT, faces")
    assert titles["IT_dprime_faces.svg"] == ["d′ faces vs the rest — IT"]
    assert titles["IT_preference.svg"] == ["preferred domain — IT"]
    assert any(t.endswith("— IT") for t in titles["IT_clustering_null.svg"])
