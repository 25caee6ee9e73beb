"""Writers killed mid-write (SIGKILL, SIGTERM, SIGINT), then the same target rewritten.

Issue 13, point 4: the previous file always survives whole, the next write removes the
temporary files of dead writers (never a live writer's), and Ctrl-C aborts a write with
a non-zero exit instead of being swallowed.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import cortexsim as cx
from cortexsim.io import stale_temp_files

import harness

#: A writer that announces itself, then writes slowly enough to be killed in the middle.
_WRITER = textwrap.dedent("""
    import sys, time, numpy as np, dask.array as da, cortexsim as cx
    sys.path.insert(0, {here!r})
    import harness
    how, target = sys.argv[1], sys.argv[2]
    ds = harness.sample_sheet(n_stim=48)
    if how == "save":      # a dask-backed Sheet, written chunk by chunk, each chunk slow
        slow = da.from_array(ds.responses.values, chunks=(4, 48)).map_blocks(
            lambda b: (time.sleep(0.15), b)[1], dtype="f4")
        print("start", flush=True)
        cx.save_sheet(ds.assign(responses=(("stimulus", "unit"), slow)), target)
    else:                  # the streaming writer, one slow batch at a time
        from cortexsim.sheet import UNIT_COORDS
        import pandas as pd
        table = pd.DataFrame({{k: ds[k].values for k in ("stimulus_id", "domain")}})
        with cx.SheetWriter(target, 48, {{k: ds[k].values for k in UNIT_COORDS}}, table, {{}}, chunk_stimuli=4) as w:
            print("start", flush=True)
            for i in range(0, 48, 4):
                time.sleep(0.15)
                w.write(ds.responses.values[i:i + 4])
    print("done", flush=True)
""").format(here=str(Path(harness.__file__).parent))


def _start(how: str, target: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, how, str(target)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "start", proc.stderr.read()
    return proc


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def kill_and_rewrite(folder: Path, cases: list[tuple[str, int]], seed: int = 0) -> dict[str, int]:
    """Kill a writer of ``folder/s.h5`` per case ``(how, signal)`` at a random moment, rewrite it.

    Returns counts: kills, leftovers after the rewrite (the issue's number), damaged targets,
    SIGINT writes that still completed.
    """
    rng = np.random.default_rng(seed)
    target = folder / "s.h5"
    cx.save_sheet(harness.sample_sheet(), target)
    before = target.read_bytes()
    out = {"kills": 0, "leftover_after_rewrite": 0, "target_damaged": 0, "sigint_completed": 0,
           "left_by_kill": 0}
    for how, sig in cases:
        proc = _start(how, target)
        time.sleep(float(rng.uniform(0.1, 1.2)))
        proc.send_signal(sig)
        stdout, _ = proc.communicate(timeout=60)
        out["kills"] += 1
        if sig == signal.SIGINT and ("done" in stdout or proc.returncode == 0):
            out["sigint_completed"] += 1
        out["left_by_kill"] += len(_temps(folder))
        if target.read_bytes() != before:  # the old file or nothing else
            out["target_damaged"] += 1
        cx.save_sheet(harness.sample_sheet(), target)  # the rewrite cleans up after the dead writer
        before = target.read_bytes()
        out["leftover_after_rewrite"] += len(_temps(folder))
    return out


def test_kill_and_rewrite_leaves_nothing(tmp_path):
    cases = [(how, sig) for how in ("save", "stream") for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)]
    counts = kill_and_rewrite(tmp_path, cases)
    assert counts["kills"] == 6
    assert counts["target_damaged"] == 0, counts
    assert counts["sigint_completed"] == 0, counts
    assert counts["leftover_after_rewrite"] == 0, counts
    assert counts["left_by_kill"] >= 1  # SIGKILL cannot clean up: the next write must
    xr.testing.assert_identical(cx.open_sheet(tmp_path / "s.h5").load().drop_attrs(),
                                harness.sample_sheet().drop_attrs())


@pytest.mark.parametrize("how", ["save", "stream"])
def test_ctrl_c_aborts_the_write(tmp_path, how):
    target = tmp_path / "s.h5"
    proc = _start(how, target)
    time.sleep(0.4)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "done" not in stdout
    assert "KeyboardInterrupt" in stderr
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temporary file


def test_swallowed_ctrl_c_still_aborts(tmp_path, monkeypatch):
    """A library that catches KeyboardInterrupt inside the write cannot make it complete."""
    real = xr.Dataset.to_netcdf

    def swallowing(self, *args, **kwargs):
        real(self, *args, **kwargs)
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
        except KeyboardInterrupt:
            pass  # what h5py/dask callbacks effectively did

    monkeypatch.setattr(xr.Dataset, "to_netcdf", swallowing)
    with pytest.raises(KeyboardInterrupt):
        cx.save_sheet(harness.sample_sheet(), tmp_path / "s.h5")
    assert list(tmp_path.iterdir()) == []


def test_only_dead_writers_temp_files_are_removed(tmp_path):
    target = tmp_path / "s.h5"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        host = cx.io._host()
        dead_tmp = tmp_path / f".s.h5.{host}.{dead.pid}.0123abcd.tmp"
        live_tmp = tmp_path / f".s.h5.{host}.{live.pid}.0123abcd.tmp"
        other_target = tmp_path / f".t.h5.{host}.{dead.pid}.0123abcd.tmp"
        other_host = tmp_path / f".s.h5.elsewhere.{dead.pid}.0123abcd.tmp"
        for p in (dead_tmp, live_tmp, other_target, other_host):
            p.write_bytes(b"partial")
        assert stale_temp_files(target) == [dead_tmp]
        cx.save_sheet(harness.sample_sheet(), target)
        assert not dead_tmp.exists()
        assert live_tmp.exists() and other_target.exists() and other_host.exists()
    finally:
        live.kill()
        live.wait()
