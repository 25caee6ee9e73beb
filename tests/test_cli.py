"""The `cortexsim` command: help, record, info (in-process and as an installed script)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
import xarray as xr

import cortexsim as cx
from cortexsim.cli import main, parse_mapping


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("demo", "record", "info"):
        assert cmd in out


SCRIPT = Path(sys.executable).parent / "cortexsim"

_HEAVY = ("torch", "torchvision", "matplotlib", "scipy", "sklearn", "networkx", "nibabel", "nilearn", "skimage")


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["stimuli", "--help"], ["analyze", "--help"],
                                  ["info", "--help"]])
def test_help_and_version_import_no_heavy_library(argv):
    """`cortexsim --help` took 4.6-8.5 s because torch was imported at start (issue 13, point 15)."""
    code = ("import sys\nfrom cortexsim.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            f"print(sorted(m for m in {_HEAVY!r} if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "[]", res.stdout[-300:]


@pytest.mark.skipif(not SCRIPT.exists(), reason="console script not installed next to this Python")
def test_console_script():
    res = subprocess.run([str(SCRIPT), "record", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "--areas" in res.stdout


@pytest.mark.parametrize("package", ["cortexsim.analysis", "cortexsim.stimuli", "cortexsim.adapters"])
def test_lazy_names_stay_functions_after_their_submodules_load(package):
    """`analysis.selectivity` is a function and a submodule: importing the submodule (as dprime does)
    must not turn the public name into the module."""
    import importlib
    import types

    pkg = importlib.import_module(package)
    for name in pkg.__all__:
        getattr(pkg, name)
    for name in pkg.__all__:
        if importlib.util.find_spec(f"{package}.{name}") is not None:
            importlib.import_module(f"{package}.{name}")
    shadowed = [n for n in pkg.__all__ if isinstance(getattr(pkg, n), types.ModuleType)]
    assert shadowed == []


def test_parse_mapping():
    assert parse_mapping("V1=layer2.0, IT=layer4.1", "--areas") == {"V1": "layer2.0", "IT": "layer4.1"}
    import argparse

    with pytest.raises(argparse.ArgumentTypeError, match="AREA=NAME"):
        parse_mapping("layer2.0", "--areas")


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=5)
    path = tmp_path / "w.pt"
    torch.save({"model": model.state_dict()}, path)
    return model.eval(), path


def test_record_and_info(weights, tmp_path, capsys):
    model, path = weights
    images = np.random.default_rng(0).random((5, 3, 32, 32), dtype=np.float32)
    np.save(tmp_path / "x.npy", images)
    out = tmp_path / "sheet.h5"
    code = main([
        "record", "--model", "resnet18", "--num-classes", "5", "--weights", str(path),
        "--areas", "V1=layer2.0,IT=layer4.1", "--layout", "V1=retinotopic,IT=grid2d",
        "--stimuli", str(tmp_path / "x.npy"), "--batch-size", "2", "--out", str(out),
    ])
    assert code == 0
    ds = cx.open_sheet(out)
    expected = cx.record(model, torch.from_numpy(images), {"V1": "layer2.0", "IT": "layer4.1"},
                         layout={"V1": "retinotopic", "IT": "grid2d"}, progress=False)
    xr.testing.assert_allclose(ds.load().drop_attrs(), expected.drop_attrs(), rtol=1e-5, atol=1e-6)
    assert len(ds.attrs["checkpoint_sha256"]) == 64
    capsys.readouterr()
    assert main(["info", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["stimuli"] == 5 and summary["areas"]["V1"]["units"] == 128 * 16
    assert summary["areas"]["IT"] == {"units": 512, "layer": "layer4.1", "layout": "grid2d",
                                      "extent_mm": pytest.approx([1.0, 1.0])}  # reference grid2d: 23 columns over [0, 1]
    assert main(["info", str(out)]) == 0
    assert "area IT" in capsys.readouterr().out


def test_record_errors_are_reported(weights, tmp_path, capsys):
    _, path = weights
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 32, 32), np.float32))
    code = main(["record", "--model", "resnet18", "--num-classes", "5", "--weights", str(path),
                 "--areas", "IT=layer9", "--stimuli", str(tmp_path / "x.npy"), "--out", str(tmp_path / "s.h5")])
    assert code == 2
    err = capsys.readouterr().err
    assert "no module 'layer9'" in err
    assert main(["info", str(tmp_path / "missing.h5")]) == 2
    assert "no Sheet file" in capsys.readouterr().err
    assert main(["record", "--model", "not_a_model", "--areas", "IT=fc", "--stimuli", str(tmp_path / "x.npy"),
                 "--out", str(tmp_path / "s.h5")]) == 2
    assert "unknown torchvision model" in capsys.readouterr().err
