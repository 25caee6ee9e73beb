"""`cortexsim brainscore setup | plugin | score | tissue` from the command line."""
from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from PIL import Image

import cortexsim as cx
from cortexsim.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from cortexsim.adapters.trainer import Trainer

    run = tmp_path_factory.mktemp("bs") / "run"
    Trainer(method="ws", arch="th_mnist", data="digits", steps=1, batch_size=8, device="cpu", progress=False,
            out=run).fit()
    return run


def sheet_and_neural(tmp_path, n_stim=30, n_units=40, n_sites=12):
    rng = np.random.default_rng(0)
    ids = [f"s{i}" for i in range(n_stim)]
    pos = rng.uniform(0, 2, (n_units, 2))
    x = np.cos(pos[None, :, 0] * rng.uniform(0, 3, (n_stim, 1))) + 0.1 * rng.normal(size=(n_stim, n_units))
    cx.save_sheet(cx.make_sheet(x.astype(np.float32), x_mm=pos[:, 0], y_mm=pos[:, 1], area="IT",
                                stimuli={"stimulus_id": ids}), tmp_path / "sheet.h5")
    sites = rng.choice(n_units, n_sites, replace=False)
    reps = np.stack([x[:, sites] + 0.2 * rng.normal(size=(n_stim, n_sites)) for _ in range(2)])
    xr.DataArray(reps, dims=("repetition", "presentation", "neuroid"),
                 coords={"stimulus_id": ("presentation", ids), "neuroid_id": ("neuroid", [f"e{i}" for i in sites]),
                         "tissue_x": ("neuroid", pos[sites, 0]), "tissue_y": ("neuroid", pos[sites, 1]),
                         "region": ("neuroid", ["IT"] * n_sites)}).to_dataset(name="responses").to_netcdf(
        tmp_path / "neural.nc")
    for i in ids:
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    return tmp_path / "sheet.h5", tmp_path / "neural.nc"


def test_plugin_command(run_dir, tmp_path, capsys):
    assert main(["brainscore", "plugin", str(run_dir), "--id", "cli-ws", "--out", str(tmp_path),
                 "--map", "V1=net.conv2"]) == 0
    out = capsys.readouterr().out
    assert "wrote Brain-Score plugin 'cli-ws'" in out and "V1 -> net.conv2 (16384 neuroids)" in out
    assert json.loads((tmp_path / "models" / "cli_ws" / "region_layer_map" / "cli-ws.json").read_text()) == {
        "V1": "net.conv2", "IT": "net.fc1"}
    assert main(["brainscore", "plugin", str(run_dir), "--id", "cli-ws", "--out", str(tmp_path)]) == 2
    assert "exists; pass overwrite" in capsys.readouterr().err
    assert main(["brainscore", "plugin", str(run_dir), "--id", "x", "--out", str(tmp_path), "--map", "V1"]) == 2
    assert "--map must look like" in capsys.readouterr().err
    assert main(["brainscore", "plugin", str(run_dir / "nope"), "--id", "x", "--out", str(tmp_path)]) == 2
    assert "no run folder" in capsys.readouterr().err


def test_tissue_command_and_benchmark_folders(tmp_path, capsys):
    sheet, neural = sheet_and_neural(tmp_path)
    assert main(["brainscore", "tissue", str(sheet), str(neural), "--n-bins", "4", "--json", str(tmp_path / "t.json")]) == 0
    assert "tissue correlation IT (area IT): score" in capsys.readouterr().out
    saved = json.loads((tmp_path / "t.json").read_text())
    assert 0 <= saved["raw"] <= 1 and len(saved["similarity"]) == 4
    assert main(["brainscore", "tissue", str(neural), "--benchmark-out", str(tmp_path / "b"), "--id", "lab.IT-t",
                 "--stimuli", str(tmp_path), "--n-bins", "4"]) == 0
    assert (tmp_path / "b" / "benchmarks" / "lab_IT_t" / "benchmark.json").is_file()
    assert (tmp_path / "b" / "metrics" / "lab_IT_t" / "tissue_core.py").is_file()
    assert main(["brainscore", "tissue", str(neural)]) == 2
    assert "give SHEET NEURAL" in capsys.readouterr().err


def test_score_command_without_environment_says_what_to_run(tmp_path, capsys):
    sheet, neural = sheet_and_neural(tmp_path)
    assert main(["brainscore", "score", str(sheet), str(neural), "--metric", "rdm", "--venv", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert "no Brain-Score environment" in err and f"cortexsim brainscore setup --venv {tmp_path / 'v'}" in err
    assert main(["brainscore", "score", str(sheet), str(neural), "--region", "V4"]) == 2
    assert "not in region 'V4'" in capsys.readouterr().err


@pytest.mark.slow
def test_score_and_setup_commands_with_the_environment(tmp_path, capsys):
    from cortexsim.brainscore.testing import require_env

    env = require_env()
    assert main(["brainscore", "setup", "--venv", str(env.path)]) == 0  # complete: reused at once
    assert "(reused)" in capsys.readouterr().out
    sheet, neural = sheet_and_neural(tmp_path)
    assert main(["brainscore", "score", str(sheet), str(neural), "--metric", "rdm,cka", "--json",
                 str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    assert "rdm IT (area IT): score" in out and "cka IT (area IT)" in out
    saved = json.loads((tmp_path / "s.json").read_text())
    assert saved["rdm"]["raw"] > 0.5 and saved["rdm"]["ceiling"] > 0.5
