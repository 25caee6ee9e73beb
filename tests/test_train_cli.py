"""`cortexsim train` parser and run (in-process), and the train benchmark script with tiny settings."""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import test_trainer_tiny  # noqa: E402,F401

from cortexsim.adapters import cli  # noqa: E402
from cortexsim.adapters.trainer import load_trained, read_log  # noqa: E402

BASE = ["train", "--method", "_tiny", "--arch", "tiny", "--data", "lfw", "--batch-size", "8", "--device", "cpu",
        "--no-progress", "--log-every", "2"]


def _parse(argv):
    parser = argparse.ArgumentParser(prog="cortexsim")
    cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_parser_maps_flags_to_trainer_arguments(tmp_path):
    args = _parse(BASE + ["--steps", "3", "--lam", "0.25", "--layout", "circle", "--no-amp", "--seed", "7",
                          "--out", str(tmp_path), "--layers", "net.conv2", "--task", "simclr"])
    assert args.func is cli.run
    tr = cli.trainer_from_args(args)
    assert (tr.method, tr.lam, tr.layout, tr.amp, tr.seed, tr.steps, tr.layers, tr.task) == (
        "_tiny", 0.25, "circle", False, 7, 3, ["net.conv2"], "simclr")
    assert tr.lr is None and tr.compile is False and tr.batch_size == 8  # unset flags keep Trainer defaults
    assert (tr.swapopt, tr.swapopt_images, tr.swapopt_reference) == (0, 512, None)
    args = _parse(BASE + ["--steps", "1", "--out", str(tmp_path), "--swapopt", "50", "--swapopt-images", "64",
                          "--swapopt-reference", str(tmp_path / "ref")])
    tr = cli.trainer_from_args(args)
    assert (tr.swapopt, tr.swapopt_images, tr.swapopt_reference) == (50, 64, str(tmp_path / "ref"))


def test_train_then_resume_from_the_command_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(BASE + ["--steps", "4", "--checkpoint-every", "2", "--out", str(run)]) == 0
    assert "trained _tiny/tiny for 4 steps" in capsys.readouterr().out
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["trainer"]["steps"] == 4 and cfg["build"]["num_classes"] == 2
    net = load_trained(run)
    assert net(torch.rand(1, 3, 32, 32)).shape == (1, 2)
    # --resume with a longer --steps continues from the last checkpoint (step 4) to 6.
    assert cli.main(["train", "--resume", "--steps", "6", "--out", str(run), "--no-progress"]) == 0
    assert [r["step"] for r in read_log(run)] == [2, 4, 6]


def test_bad_configuration_exits_2_with_the_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:  # refused by the parser, before any work
        cli.main(BASE + ["--steps", "2", "--lam", "-1", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "cortexsim train: error: argument --lam: must be ≥ 0; got -1" in capsys.readouterr().err
    code = cli.main(BASE + ["--steps", "2", "--layout", "no_such_layout", "--out", str(tmp_path)])
    assert code == 2 and "cortexsim train: error:" in capsys.readouterr().err
    code = cli.main(BASE[:6] + [str(tmp_path / "no_cifar")] + BASE[7:] + ["--steps", "2", "--out", str(tmp_path)])
    assert code == 2 and "put CIFAR-10 as torchvision lays it out" in capsys.readouterr().err


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit):
        _parse(["train", "--help"])
    text = capsys.readouterr().out
    for flag in ("--method", "--arch", "--data", "--epochs", "--steps", "--batch-size", "--lr", "--lam", "--layout",
                 "--task", "--out", "--resume", "--checkpoint-every", "--device", "--amp", "--no-amp", "--compile",
                 "--seed"):
        assert flag in text


def _bench():
    path = Path(__file__).parents[1] / "benchmarks" / "train_bench.py"
    spec = importlib.util.spec_from_file_location("train_bench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_train_bench_and_curves_run_on_cpu_with_tiny_settings(tmp_path, capsys):
    from cortexsim import adapters

    if not {"baseline", "ws"} <= set(adapters.methods()):
        pytest.skip("baseline / ws not registered yet")
    bench = _bench()
    common = ["--device", "cpu", "--methods", "ws", "--arch", "smallcnn", "--batch", "4",
              "--results-dir", str(tmp_path)]
    assert bench.main(common + ["--steps", "3", "--warmup", "1"]) == 0
    (res_file,) = tmp_path.glob("train_bench_cpu_*.json")
    res = json.loads(res_file.read_text())
    assert res["torch"] == torch.__version__ and res["device"].startswith("cpu")
    rows = {r["method"]: r for r in res["results"]}
    assert set(rows) == {"baseline", "ws"}     # the baseline is added and measured in the same run
    assert rows["ws"]["ratio_vs_baseline"] == pytest.approx(rows["ws"]["median_ms"] / rows["baseline"]["median_ms"],
                                                            rel=1e-2)
    assert "ws" in capsys.readouterr().out
    assert bench.main(common + ["--curves", "--curve-steps", "4", "--log-every", "2", "--data", "lfw"]) == 0
    (curves_file,) = tmp_path.glob("train_curves_cpu_*.json")
    hist = json.loads(curves_file.read_text())["methods"]["ws"]["history"]
    assert [r["step"] for r in hist] == [2, 4] and hist[0]["spatial_loss"] > 0
    assert list(tmp_path.glob("train_curves_cpu_*_ws.png"))


def test_record_run_uses_the_runs_image_size_and_normalisation(tmp_path, capsys):
    """`record --run` recorded at 224 px although the run trained at 16 / 32 px (issue 13, point 15)."""
    import numpy as np

    from cortexsim import open_sheet
    from cortexsim.cli import main as cortexsim_main

    run = tmp_path / "run"
    assert cli.main(BASE + ["--steps", "1", "--image-size", "16", "--out", str(run)]) == 0
    capsys.readouterr()

    def record(name, *extra):
        argv = ["record", "--run", str(run), "--stimuli", "digits", "--no-progress", "--out", str(tmp_path / name)]
        assert cortexsim_main(argv + list(extra)) == 0
        return open_sheet(tmp_path / name)

    default = record("default.h5")
    assert "recording at the run's image size, 16 px" in capsys.readouterr().out
    assert default.attrs["normalize"] == "none"  # cortexsim runs train on [0, 1] images
    # the same responses as at an explicit 16 px, not those at 224 px (the old default)
    np.testing.assert_array_equal(default.responses.values, record("at16.h5", "--image-size", "16").responses.values)
    assert not np.allclose(default.responses.values, record("at224.h5", "--image-size", "224").responses.values)


RESET = ["train", "--method", "reset", "--data", "lfw", "--batch-size", "8", "--device", "cpu", "--no-progress",
         "--steps", "1", "--checkpoint-every", "1"]


def test_method_kwargs_set_a_build_option_are_stored_and_fixed_on_resume(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(RESET + ["--method-kwargs", '{"n": 2}', "--out", str(run)]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["trainer"]["method_kwargs"] == {"n": 2}
    assert cfg["build"]["kw"] == {"n": 2, "m": 32, "loss": "bce", "dropout": 0.5}  # over reset's build defaults
    net = load_trained(run)
    assert net.net.n == 2 and len(net.net.subnets) == 4  # 2×2 sub-networks; the default is Reset(4, 32): 16
    assert cli.main(["train", "--resume", "--method-kwargs", '{"n": 8}', "--steps", "2", "--out", str(run),
                     "--no-progress"]) == 2
    assert "method_kwargs differ from the run's config (method_kwargs={'n': 2})" in capsys.readouterr().err


def test_bad_method_kwargs_name_the_allowed_keys(tmp_path, capsys):
    assert cli.main(RESET + ["--method-kwargs", '{"k": 4, "lam": 1}', "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert ("method 'reset' has no build option(s) ['k', 'lam'] (lam: use their own arguments/flags); its options "
            "are: n, m, dropout, loss, autoencoder, in_channels, input_norm.") in err
    for bad, why in (('{"n": 4', "not valid JSON"), ('[4]', "must be a JSON object")):
        with pytest.raises(SystemExit) as info:
            cli.main(RESET + ["--method-kwargs", bad, "--out", str(tmp_path / "b")])
        assert info.value.code == 2 and why in capsys.readouterr().err
