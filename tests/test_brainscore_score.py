"""Brain-Score's own metrics on Sheets (cortexsim.brainscore.score), the separate environment and its errors."""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
import xarray as xr

import cortexsim as cx
from cortexsim.brainscore import env as bs_env
from cortexsim.brainscore.exchange import load_neural
from cortexsim.brainscore.score import score
from cortexsim.errors import BrainScoreEnvError, BrainScoreError


def mixture(n_stim=100, n_units=64, n_neuroids=20, n_reps=3, noise=0.7, seed=0):
    """A made-up Sheet and neural data mixed linearly from it (+ noise per repetition)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_stim, n_units)).astype(np.float32)
    ids = [f"s{i}" for i in range(n_stim)]
    sheet = cx.make_sheet(x, x_mm=rng.uniform(0, 5, n_units), y_mm=rng.uniform(0, 5, n_units), area="IT",
                          stimuli={"stimulus_id": ids, "category": np.tile(["a", "b", "c", "d"], n_stim // 4)})
    y = x @ rng.normal(size=(n_units, n_neuroids)) / np.sqrt(n_units)
    reps = np.stack([y + rng.normal(scale=noise, size=y.shape) for _ in range(n_reps)])
    neural = xr.DataArray(reps, dims=("repetition", "presentation", "neuroid"),
                          coords={"stimulus_id": ("presentation", ids),
                                  "neuroid_id": ("neuroid", [f"n{i}" for i in range(n_neuroids)]),
                                  "region": ("neuroid", ["IT"] * n_neuroids)})
    return sheet, neural


@pytest.mark.slow
def test_metrics_high_for_the_mixture_and_chance_for_the_shuffle(tmp_path):
    from cortexsim.brainscore.testing import require_env

    require_env()
    sheet, neural = mixture()
    # through a file, with a neural order different from the Sheet's
    neural.isel(presentation=slice(None, None, -1)).to_dataset(name="responses").to_netcdf(tmp_path / "neural.nc")
    res = score(sheet, tmp_path / "neural.nc", metric=["pls", "ridge", "rdm", "cka"], splits=3,
                workdir=tmp_path / "work")
    for name, low in (("pls", 0.6), ("ridge", 0.6), ("rdm", 0.25), ("cka", 0.25)):
        r = res[name]
        assert r.raw > low, r
        assert abs(r.shuffled_raw) < 0.1, r
        assert 0.6 < r.ceiling < 1.0  # split-half consistency of 3 noisy repetitions
        assert r.n_stimuli == 100 and r.n_units == 64 and r.n_neuroids == 20
    assert res["pls"].error is not None and res["pls"].error < 0.1
    assert res["pls"].score == pytest.approx(res["pls"].raw ** 2 / res["pls"].ceiling)  # Brain-Score's r² / ceiling
    assert res["rdm"].score == pytest.approx(res["rdm"].raw / res["rdm"].ceiling)
    request = json.loads((tmp_path / "work" / "request.json").read_text())
    assert request["stratification_coord"] == "object_name"  # auto: the Sheet's category coord


@pytest.mark.slow
def test_pca_to_the_number_of_stimuli_keeps_pls_and_ridge(tmp_path):
    """PLS (scale=False) and ridge see the units only up to a rotation: PCA to n_stimuli components is exact."""
    from cortexsim.brainscore.testing import require_env

    require_env()
    sheet, neural = mixture(n_stim=40, n_units=300, n_neuroids=8, n_reps=2)
    kw = dict(metric=["pls", "ridge"], splits=2, stratification_coord=None, shuffle_control=False, ceiling=False)
    full, pca = score(sheet, neural, **kw), score(sheet, neural, n_components=40, **kw)
    assert pca["pls"].n_units == 40 and pca["pls"].reduction.startswith("PCA: 40 components")
    for name in ("pls", "ridge"):
        assert pca[name].raw == pytest.approx(full[name].raw, abs=2e-3)
    sub = score(sheet, neural, max_units=50, **kw)
    assert sub["pls"].n_units == 50 and "random subset of 50 of 300" in sub["pls"].reduction


@pytest.mark.slow
def test_runs_are_network_isolated(tmp_path):
    from cortexsim.brainscore.testing import require_env

    env = require_env()
    probe = env.run("probe", {}, tmp_path)
    assert probe["metadata_address"].startswith("blocked")  # the socket guard, always
    if bs_env.network_isolation() is not None:
        assert probe["interfaces"] == ["lo"]  # a fresh network namespace: loopback only
    assert probe["versions"]["brainscore-vision"] == bs_env.BRAINSCORE_VERSION


def test_bad_inputs_are_cortexsim_errors(tmp_path):
    sheet, neural = mixture(n_stim=20, n_units=8, n_neuroids=3)
    with pytest.raises(BrainScoreError, match="recorded in 'IT', not in region 'V4'"):
        score(sheet, neural, region="V4")
    with pytest.raises(BrainScoreError, match="unknown region 'V4'.*areas are"):
        score(sheet, neural.drop_vars("region"), region="V4")
    other = neural.assign_coords(stimulus_id=("presentation", [f"x{i}" for i in range(20)]))
    with pytest.raises(BrainScoreError, match="20 of 20 neural stimulus ids are not in the Sheet"):
        score(sheet, other)
    with pytest.raises(BrainScoreError, match="no neuroid coords"):
        score(sheet, neural.drop_vars(["neuroid_id", "region"]))
    with pytest.raises(BrainScoreError, match="unknown metric"):
        score(sheet, neural, metric="accuracy")
    with pytest.raises(BrainScoreError, match="NaN"):
        score(sheet, neural.where(neural > -3))
    with pytest.raises(BrainScoreError, match="cannot stratify"):
        score(sheet, neural, stratification_coord="stimulus_id")
    with pytest.raises(BrainScoreError, match="no neural data file"):
        score(sheet, tmp_path / "missing.nc")


def test_missing_and_broken_environments_say_what_to_run(tmp_path):
    sheet, neural = mixture(n_stim=20, n_units=8, n_neuroids=3)
    with pytest.raises(BrainScoreEnvError, match=r"no Brain-Score environment .* `cortexsim brainscore setup --venv"):
        score(sheet, neural, venv=tmp_path / "none")
    broken = tmp_path / "broken"
    broken.mkdir()
    stamp = {"requirements": list(bs_env.REQUIREMENTS), "site_packages": str(broken)}
    (broken / bs_env.STAMP).write_text(json.dumps(stamp))
    with pytest.raises(BrainScoreEnvError, match="no interpreter .* --force"):
        score(sheet, neural, venv=broken)
    (broken / "bin").mkdir()
    os.symlink(sys.executable, broken / "bin" / "python")  # a Python without brainscore_vision
    with pytest.raises(BrainScoreEnvError, match="Brain-Score cannot be imported .* --force"):
        score(sheet, neural, venv=broken, stratification_coord=None)
    (broken / bs_env.STAMP).write_text(json.dumps({**stamp, "requirements": ["brainscore-vision==2.0"]}))
    with pytest.raises(BrainScoreEnvError, match="made for"):
        bs_env.find_env(broken)


def test_load_neural_formats(tmp_path):
    _, neural = mixture(n_stim=8, n_units=4, n_neuroids=3, n_reps=2)
    flat = load_neural(neural)
    assert flat.dims == ("presentation", "neuroid") and flat.shape == (16, 3)
    assert list(flat.repetition.values) == [0] * 8 + [1] * 8
    np.savez(tmp_path / "n.npz", responses=neural.values, stimulus_id=neural.stimulus_id.values,
             neuroid_id=neural.neuroid_id.values, tissue_x=np.arange(3.0))
    z = load_neural(tmp_path / "n.npz")
    np.testing.assert_array_equal(z.values, flat.values)
    np.testing.assert_array_equal(z.tissue_x.values, [0, 1, 2])
    with pytest.raises(BrainScoreError, match="more than once per repetition"):
        load_neural(flat.drop_vars("repetition"))
