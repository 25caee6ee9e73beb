"""plot_curves (cortexsim.plotting.training): the trainer's curves.png, drawn from the log records."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
from matplotlib.figure import Figure

from cortexsim.plotting import plot_curves

RECORDS = [{"step": s, "task_loss": 2.0 / s, "spatial_loss": 0.1 * s, "spatial/a": 0.2 * s, "spatial/b": 0.3 * s}
           for s in (10, 20, 30)]


def test_plot_curves_draws_the_logged_values_and_writes_atomically(tmp_path):
    out = tmp_path / "run" / "curves.png"
    left, right = plot_curves(RECORDS, out, title="tiny")
    (task,) = left.get_lines()
    np.testing.assert_allclose(task.get_xydata(), [[10, 0.2], [20, 0.1], [30, 2.0 / 30]])
    assert left.get_title() == "tiny"
    lines = {ln.get_label(): ln.get_ydata() for ln in right.get_lines()}
    assert list(lines) == ["total (weighted)", "a", "b"]
    np.testing.assert_allclose(lines["b"], [3.0, 6.0, 9.0])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["curves.png"]  # no temporary file left


def test_plot_curves_draws_into_given_axes_without_saving(tmp_path):
    fig = Figure()
    axes = fig.subplots(1, 2)
    got = plot_curves(RECORDS, ax=axes)
    assert got[0] is axes[0] and len(axes[1].get_lines()) == 3
    assert not list(tmp_path.iterdir())


def test_the_trainer_does_not_import_matplotlib():
    code = "import sys, cortexsim.adapters.trainer; print('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
