"""What a new user reads first (issue 13, points 15-16): help texts, method defaults, quiet progress bars."""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import re

import pytest

from cortexsim.cli import build_parser, main


def _subparsers(parser: argparse.ArgumentParser, prefix: str = "cortexsim") -> dict[str, argparse.ArgumentParser]:
    """Every (sub-)command's parser, by its command line, e.g. ``cortexsim stimuli preview``."""
    out = {prefix: parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.update(_subparsers(sub, f"{prefix} {name}"))
    return out


def _help(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    return out.getvalue()


def test_no_help_text_contradicts_itself():
    """'(default baseline) (default: None)' and '--no-progress (default: True)' were in train's / demo's help."""
    for command in _subparsers(build_parser()):
        text = " ".join(_help(command.split()[1:]).split())  # one line: argparse wraps long helps
        assert not re.search(r"\(default: (None|True|False)\)", text), command
        assert not re.search(r"\(default[^()]*\) \(default", text), command


def test_train_help_lists_every_method_with_its_architectures():
    from cortexsim import adapters

    text = _help(["train"])
    for name in adapters.methods():
        spec = adapters.get_method(name)
        (line,) = [ln for ln in text.splitlines() if ln.split()[:1] == [name]]
        default = spec.defaults.get("arch", spec.archs[0])
        assert f"default {default}" in line and all(a in line for a in spec.archs), line
    assert re.search(r"^\s+reset\s+default resnet20\s+supports resnet20$", text, re.M)


def test_record_and_stimuli_help_document_each_option():
    text = " ".join(_help(["record"]).split())
    assert "--batch-size BATCH_SIZE stimuli per forward pass (default 64)" in text
    assert "--device DEVICE torch device: cpu, cuda or cuda:N (default cpu)" in text
    assert "(default none" in text.split("--normalize {none,imagenet}")[-1][:200]
    from cortexsim import stimuli

    text = _help(["stimuli"])
    for name in stimuli.names():
        assert re.search(rf"^\s+{name}\s+\S", text, re.M), name


@pytest.mark.slow
def test_method_reset_trains_with_its_own_default_architecture(tmp_path):
    """`train --method reset` failed with the global default --arch resnet18 (Reset supports resnet20 only)."""
    run = tmp_path / "run"
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["train", "--method", "reset", "--data", "digits", "--steps", "1", "--batch-size", "4",
                     "--device", "cpu", "--out", str(run)])
    assert code == 0, err.getvalue()
    assert json.loads((run / "config.json").read_text())["build"]["arch"] == "resnet20"
    # stderr is not a terminal here: no progress bar was drawn, although --no-progress was not given
    assert "%|" not in err.getvalue() and "step/s" not in err.getvalue()


@pytest.mark.slow
def test_record_draws_no_progress_bar_into_a_log(tmp_path, capsys):
    """3,307 progress-bar lines went into a non-terminal log (point 16)."""
    code = main(["record", "--model", "resnet18", "--num-classes", "4", "--areas", "IT=layer4.1",
                 "--stimuli", "digits", "--image-size", "32", "--batch-size", "50", "--out", str(tmp_path / "s.h5")])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    assert "%|" not in cap.err and "stim/s" not in cap.err and cap.err.strip() == ""
    assert cap.out.endswith("s.h5: 200 stimuli × 512 units\n")  # layer4.1 at 32 px: 512 channels × 1 × 1


def test_info_loads_no_deep_learning_library(tmp_path):
    """`cortexsim info` is asked for often: it must not pay torch's import (seconds)."""
    import subprocess
    import sys

    import numpy as np

    import cortexsim as cx

    sheet = cx.save_sheet(cx.make_sheet(np.zeros((2, 3), np.float32), x_mm=[0, 1, 2], y_mm=[0, 0, 0], area="V1"),
                          tmp_path / "s.h5")
    code = ("import sys\nfrom cortexsim.cli import main\nassert main(['info', sys.argv[1]]) == 0\n"
            "print(sorted(m for m in ('torch', 'torchvision', 'matplotlib', 'sklearn', 'nilearn') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code, str(sheet)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "2 stimuli × 3 units" in res.stdout and res.stdout.strip().splitlines()[-1] == "[]"
