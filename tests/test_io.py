"""Sheet files: round trips, readers other than ours, atomic writes, damaged files."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pandas as pd
import dask.array
import pytest
import xarray as xr

import cortexsim as cx
from cortexsim import SheetError


def test_round_trip_identical(small_sheet, tmp_path):
    path = cx.save_sheet(small_sheet, tmp_path / "s.h5")
    back = cx.open_sheet(path)
    assert isinstance(back.responses.data, dask.array.Array) and back.responses.chunks == ((6,), (9,))  # lazy, one chunk
    xr.testing.assert_identical(small_sheet, back.load())
    assert back.attrs["model"] == "test"


def test_readable_by_h5py_and_xarray(small_sheet, tmp_path):
    path = cx.save_sheet(small_sheet, tmp_path / "s.h5")
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["responses"][...], small_sheet.responses.values)
        assert f["responses"].compression == "gzip" and f["responses"].chunks == (6, 9)
        assert [v.decode() for v in f["domain"][...]] == list(small_sheet.domain.values)
        np.testing.assert_array_equal(f["x_mm"][...], small_sheet.x_mm.values)
        assert f["responses"].fletcher32 and f["x_mm"].fletcher32 and f["unit_id"].fletcher32
    plain = xr.open_dataset(path).load()
    assert plain.attrs.pop("cortexsim_coords_sha256") == cx.io.coords_digest(small_sheet)
    xr.testing.assert_identical(plain, small_sheet)


def test_overwrite_replaces(small_sheet, tmp_path):
    path = tmp_path / "s.h5"
    cx.save_sheet(small_sheet, path)
    cx.save_sheet(small_sheet.assign(responses=small_sheet.responses * 2), path)
    np.testing.assert_allclose(cx.open_sheet(path).responses.values, small_sheet.responses.values * 2)
    assert [p.name for p in tmp_path.iterdir()] == ["s.h5"]


def test_crash_mid_write_keeps_previous_file(small_sheet, tmp_path, monkeypatch):
    path = tmp_path / "s.h5"
    cx.save_sheet(small_sheet, path)
    before = path.read_bytes()
    real = xr.Dataset.to_netcdf

    def crashing(self, target, *args, **kwargs):
        real(self, target, *args, **kwargs)  # a full temp file exists...
        with open(target, "r+b") as fh:      # ...half of it is overwritten...
            fh.truncate(os.path.getsize(target) // 2)
        raise OSError("disk full")           # ...and the writer dies

    monkeypatch.setattr(xr.Dataset, "to_netcdf", crashing)
    with pytest.raises(OSError, match="disk full"):
        cx.save_sheet(small_sheet.assign(responses=small_sheet.responses + 1), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.h5"]  # temp file cleaned up


@pytest.mark.slow  # > 5 s on the 2-core machine (pytest --durations)
def test_killed_writer_keeps_previous_file(small_sheet, tmp_path):
    """SIGKILL a process in the middle of save_sheet: the old file must survive intact."""
    path = tmp_path / "s.h5"
    cx.save_sheet(small_sheet, path)
    before = path.read_bytes()
    script = textwrap.dedent(f"""
        import sys, time, numpy as np, xarray as xr, cortexsim as cx
        real = xr.Dataset.to_netcdf
        def slow(self, target, *a, **k):
            real(self, target, *a, **k)
            print("written", flush=True)
            time.sleep(60)  # killed here: temp file complete, not yet renamed
        xr.Dataset.to_netcdf = slow
        ds = cx.open_sheet({str(path)!r}).load()
        cx.save_sheet(ds.assign(responses=ds.responses * 0), {str(path)!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "written"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert path.read_bytes() == before
    xr.testing.assert_identical(cx.open_sheet(path).load(), small_sheet)


def test_missing_file(tmp_path):
    with pytest.raises(SheetError, match="no Sheet file"):
        cx.open_sheet(tmp_path / "nope.h5")
    with pytest.raises(SheetError, match="is a folder"):
        cx.open_sheet(tmp_path)


def test_truncated_file(small_sheet, tmp_path):
    path = cx.save_sheet(small_sheet, tmp_path / "s.h5")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SheetError, match="truncated or corrupt"):
        cx.open_sheet(path)


def test_garbage_file(tmp_path):
    path = tmp_path / "s.h5"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(SheetError, match="not a readable HDF5 file"):
        cx.open_sheet(path)


def test_corrupted_chunk_detected_on_value_check(tmp_path):
    ds = cx.make_sheet(np.random.default_rng(1).normal(size=(64, 512)).astype(np.float32),
                       x_mm=np.arange(512.0), y_mm=np.zeros(512))
    path = cx.save_sheet(ds, tmp_path / "s.h5")
    with h5py.File(path, "r") as f:
        offset = f["responses"].id.get_chunk_info(0).byte_offset
    raw = bytearray(path.read_bytes())
    raw[offset + 16 : offset + 2048] = b"\x00" * (2048 - 16)  # smash compressed bytes
    path.write_bytes(bytes(raw))
    with pytest.raises(SheetError, match="damaged|decode|NaN"):
        cx.open_sheet(path, check_values=True)


def test_not_a_cortexsim_file(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(SheetError, match="not a cortexsim Sheet"):
        cx.open_sheet(path)
    nc = tmp_path / "plain.nc"
    xr.Dataset({"responses": (("stimulus", "unit"), np.zeros((2, 2)))}).to_netcdf(nc, engine="h5netcdf")
    with pytest.raises(SheetError, match="not a cortexsim Sheet"):
        cx.open_sheet(nc)


def test_open_validates_schema(small_sheet, tmp_path):
    path = tmp_path / "s.h5"
    bad = small_sheet.drop_vars("unit_id")
    bad.attrs["Conventions"] = "cortexsim-sheet-1"
    bad.to_netcdf(path, engine="h5netcdf")
    with pytest.raises(SheetError, match="missing the unit coord 'unit_id'"):
        cx.open_sheet(path)


def test_open_check_values(small_sheet, tmp_path):
    bad = small_sheet.copy(deep=True)
    bad.responses[1, 1] = np.nan
    path = cx.save_sheet(bad, tmp_path / "s.h5")
    cx.open_sheet(path)  # schema only by default: cheap for huge files
    with pytest.raises(SheetError, match="1 NaN/Inf"):
        cx.open_sheet(path, check_values=True)


def test_sheet_writer_streams_same_file_as_save(small_sheet, tmp_path):
    coords = {k: small_sheet[k].values for k in ("area", "layer", "channel", "row", "col", "x_mm", "y_mm", "unit_id")}
    table = pd.DataFrame({k: small_sheet[k].values for k in ("stimulus_id", "domain")})
    path = tmp_path / "w.h5"
    with cx.SheetWriter(path, 6, coords, table, {"model": "test"}, chunk_stimuli=4) as w:
        assert not path.exists()  # only appears when complete
        w.write(small_sheet.responses.values[:4])
        w.write(small_sheet.responses.values[4:])
    back = cx.open_sheet(path).load()
    xr.testing.assert_equal(back, small_sheet)
    with h5py.File(path) as f:
        assert f["responses"].chunks == (4, 9)


def test_sheet_writer_incomplete_leaves_nothing(small_sheet, tmp_path):
    coords = {k: small_sheet[k].values for k in ("area", "layer", "channel", "row", "col", "x_mm", "y_mm", "unit_id")}
    table = pd.DataFrame({"stimulus_id": small_sheet.stimulus_id.values})
    path = tmp_path / "w.h5"
    w = cx.SheetWriter(path, 6, coords, table, {})
    w.write(small_sheet.responses.values[:2])
    with pytest.raises(SheetError, match="only 2 of 6"):
        w.close()
    with pytest.raises(SheetError, match=r"shape \(B, 9\)"):
        cx.SheetWriter(path, 6, coords, table, {}).write(np.zeros((2, 3)))
    assert not path.exists()


def test_writable_path_refuses_what_is_in_the_way_before_any_work(small_sheet, tmp_path):
    """`--out` checks (issue 13, point 14): each case is an OutputError saying what is in the way."""
    from cortexsim.errors import OutputError
    from cortexsim.io import writable_path

    a_file = tmp_path / "afile"
    a_file.write_text("x")
    (tmp_path / "adir").mkdir()
    cases = [
        (tmp_path / "adir", "file", "is a directory; give a file name inside it"),
        (a_file / "s.h5", "file", "'" + str(a_file) + "' is a file, not a folder"),
        (a_file, "dir", "is a file, not a folder; give a folder name"),
        (a_file / "deeper" / "out", "dir", "is a file, not a folder"),
        ("/proc/cortexsim_test/s.h5", "file", "cannot write --out '/proc/cortexsim_test/s.h5'"),
    ]
    for path, kind, words in cases:
        with pytest.raises(OutputError, match=re.escape(words)):
            writable_path(path, kind, "--out")
    # what it accepts: folders are created, nothing else is left behind (the probe file is removed)
    assert writable_path(tmp_path / "new" / "sub" / "s.h5") == tmp_path / "new" / "sub" / "s.h5"
    assert writable_path(tmp_path / "run", "dir") == tmp_path / "run"
    assert sorted(p.name for p in (tmp_path / "new").rglob("*")) == ["sub"] and not any((tmp_path / "run").iterdir())
    with pytest.raises(OutputError, match="is a directory"):
        cx.save_sheet(small_sheet, tmp_path / "adir")
    assert issubclass(OutputError, OSError) and issubclass(OutputError, cx.CortexsimError)
