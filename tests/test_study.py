"""cortexsim.study: statistics of a map from a Sheet, the self-contained report, the held-out split."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

import cortexsim as cx
from cortexsim.study import html
from cortexsim.study.report import write_report
from cortexsim.study.stats import map_result

SIDE = 10


def _sheet(kind: str, seed: int = 0):
    """A 10 × 10 grid (1 mm) recorded on 20 stimuli of category 3 and 20 of category 7.

    ``halves``: the left half of the sheet responds to 3, the right half to 7 (two patches);
    ``scattered``: the same two tunings dealt out to units at random (salt and pepper).
    """
    rng = np.random.default_rng(seed)
    row, col = np.divmod(np.arange(SIDE * SIDE), SIDE)
    prefers_3 = col < SIDE // 2 if kind == "halves" else rng.permutation(SIDE * SIDE) < SIDE * SIDE // 2
    shown = np.repeat([3, 7], 20)
    mean = np.where(shown[:, None] == 3, prefers_3[None, :], ~prefers_3[None, :]).astype(float) * 3.0
    resp = (mean + rng.normal(size=mean.shape)).astype(np.float32)
    return cx.make_sheet(resp, x_mm=col.astype(float), y_mm=row.astype(float), row=row, col=col, area="IT",
                         layer="fc1", stimuli={"numerosity": shown}, attrs={"model": kind})


def test_two_patches_give_the_clustering_index_by_hand_and_salt_and_pepper_gives_none():
    halves = map_result(_sheet("halves"), "halves", by="numerosity", n_perm=100, seed=0, ordered=True)
    # d′ ≈ 3 for every unit: all 100 prefer their half's digit; two components of 50 units each.
    assert halves.n_selective == 100 and halves.counts == {"3": 50, "7": 50}
    assert halves.clustering["observed"] == pytest.approx(50.0)
    # Shuffled half-and-half maps percolate under 8-connectivity (threshold ≈ 0.41), so the null is large,
    # but no shuffled map keeps two 50-unit components.
    assert halves.clustering["null_mean"] < 35 and halves.clustering["p_value"] < 0.05
    assert halves.moran["mean_I"] > 0.8 and halves.moran["max_p"] <= 2 / 101
    # same tuning within a half: r = 2.25 / (2.25 + 1) ≈ 0.69, opposite across; the nearest bin mixes a few
    # cross-border pairs in, the shuffled pairs are half alike, half opposite (r ≈ 0)
    assert halves.smoothness["near"] > 0.45 and abs(halves.smoothness["near_shuffled"]) < 0.2
    # ordered classes: the topography index is defined (T_M > shuffled)
    assert halves.topography is not None and halves.topography["index"] > 0
    scattered = map_result(_sheet("scattered"), "scattered", by="numerosity", n_perm=100, seed=0)
    assert scattered.n_selective == 100
    # a scattered map is itself a draw from the null: within its spread (near percolation it is a wide one)
    assert abs(scattered.clustering["index"]) < 3 * scattered.clustering["null_std"]
    assert scattered.clustering["p_value"] > 0.05
    assert abs(scattered.moran["mean_I"]) < 0.15
    assert halves.clustering["index"] > 3 * abs(scattered.clustering["index"])


def test_report_is_one_offline_page_and_summary_matches_a_recomputation(tmp_path):
    paths = {}
    for kind in ("halves", "scattered"):
        paths[kind] = tmp_path / f"{kind}.h5"
        cx.save_sheet(_sheet(kind), paths[kind])
    summary = write_report(paths, tmp_path / "rep", by="numerosity", n_perm=50, seed=1,
                           headline=("halves", "scattered"), progress=False)
    page = (tmp_path / "rep" / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') >= 4
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from a network
    assert "<script" not in page
    on_disk = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert on_disk["headline"]["topographic_exceeds_control"] is True
    assert on_disk["models"]["halves"]["clustering_observed"] == pytest.approx(50.0)
    again = map_result(cx.open_sheet(paths["scattered"]), "s", by="numerosity", n_perm=50, seed=1)
    assert on_disk["models"]["scattered"]["clustering_index"] == pytest.approx(again.clustering["index"])
    assert on_disk["models"]["scattered"]["morans_i_mean"] == pytest.approx(again.moran["mean_I"])
    assert summary["environment"]["versions"]["numpy"] == np.__version__


def test_html_escapes_text_and_formats_numbers():
    t = html.table(["a<b", "n"], [["<script>", 0.123456], ["x & y", 3]])
    assert "&lt;script&gt;" in t and "a&lt;b" in t and "x &amp; y" in t
    assert ">0.1235<" in t and ">3<" in t


def test_every_public_name_of_the_study_package_resolves():
    import cortexsim.study as study

    for name in study.__all__:
        obj = getattr(study, name)
        assert callable(obj), name
    assert study.run_demo.__module__ == "cortexsim.study.demo"
