"""Bad command lines of every sub-command (issue 13, point 14): exit 2 with a one-line error, no traceback.

The cases are :func:`harness.cli_cases` (unwritable / odd ``--out``, ``record --weights`` of every
wrong kind, ``--device`` without a GPU, corrupt stimuli, out-of-range and non-finite numbers, ...).
Each runs in this process through ``cortexsim.cli.main``, as the console script does.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import harness

pytestmark = pytest.mark.slow  # ~70 invocations, a few build a torchvision model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return harness.cli_fixtures(tmp_path_factory.mktemp("cli"))


@pytest.fixture(scope="module")
def outcomes(files):
    """name -> (exit code, stderr, class) of every case, run once for the module."""
    out = {}
    for name, argv in harness.cli_cases(files):
        code, err = harness.run_cli(argv)
        out[name] = (code, err, harness.classify_cli(code, err))
    return out


def test_every_bad_invocation_is_a_one_line_error_with_exit_2(outcomes):
    bad = {name: (code, err[-400:]) for name, (code, err, cls) in outcomes.items() if cls != "clean"}
    assert not bad, bad
    assert len(outcomes) >= 60


@pytest.mark.parametrize("name, words", [
    ("record --weights of resnet34", ["unexpected ['layer1.2.conv1.weight'", "torchvision's resnet34",
                                      "--model resnet34"]),
    ("record --weights of squeezenet", ["missing ['conv1.weight'", "torchvision's squeezenet1_0"]),
    ("record --weights a whole model", ["weights_only=True", "model.state_dict()"]),
    ("record --weights a tensor", ["holds Tensor, not a state dict"]),
    ("record --weights a directory", ["is a folder", "--run"]),
    ("record --out is a directory", ["is a directory", "out.h5"]),
    ("record --out under a file", ["is a file, not a folder"]),
    ("record --device cuda:7", ["CUDA is not available", "--device cpu"]),
    ("record corrupt .npy", ["cannot read", "np.save"]),
    ("analyze --by missing", ["no stimulus coord 'category'", "['domain', 'numerosity']", "--by"]),
    ("analyze --what ''", ["--what is empty"]),
    ("analyze --threshold nan", ["--threshold", "finite"]),
    ("train --image-size 3", ["--image-size", "≥ 8"]),
    ("train --lr inf", ["--lr", "finite"]),
    ("train --resume nothing", ["nothing to resume"]),
    ("demo --epochs 0", ["--epochs", "≥ 1"]),
    ("demo --only bogus", ["unknown stage(s) ['bogus']"]),
    ("preview --nrow 0", ["--nrow", "≥ 1"]),
    ("preview unknown extension", ["unknown image type '.xyz'"]),
    ("export --out under a file", ["is a file, not a folder"]),
])
def test_the_message_says_what_is_wrong_and_what_to_do(outcomes, name, words):
    code, err, _ = outcomes[name]
    last = [ln for ln in err.splitlines() if ln.strip()][-1]
    assert code == 2
    for w in words:
        assert w in last, last


def test_nothing_is_written_when_the_command_is_refused(files, outcomes):
    """--out is checked before any work: the refused commands left no output behind."""
    out = files["dir"].parent / "out"
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) if out.exists() else []
    assert left == []


def test_info_json_into_a_closed_pipe_is_quiet(files):
    """`cortexsim info --json sheet | head -0`: the reader is gone before the first write."""
    read, write = os.pipe()
    os.close(read)
    code = "import sys\nfrom cortexsim.cli import main\nsys.exit(main(sys.argv[1:]))"
    res = subprocess.run([sys.executable, "-c", code, "info", "--json", str(files["sheet"])], stdout=write,
                         stderr=subprocess.PIPE, text=True, timeout=120)
    os.close(write)
    assert "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr, res.stderr
    assert res.returncode == 1


def test_ctrl_c_during_a_command_exits_130_without_traceback(monkeypatch, capsys):
    import argparse

    from cortexsim.cli import run_command

    def interrupted(args):
        raise KeyboardInterrupt

    code = run_command(argparse.Namespace(func=interrupted, command="record"))
    err = capsys.readouterr().err
    assert code == 130 and err.startswith("cortexsim record: interrupted (Ctrl-C)") and "Traceback" not in err
    code = run_command(argparse.Namespace(func=interrupted, command="train", resume=False, out="runs/a"))
    assert code == 130 and "continue with `cortexsim train --resume --out runs/a`" in capsys.readouterr().err
