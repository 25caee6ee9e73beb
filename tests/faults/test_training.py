"""Training-run faults: damaged checkpoints, resumes after early kills, corrupt run files, divergence.

Issue 13, points 8–10.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import test_trainer_tiny  # noqa: E402,F401  registers the "_tiny" method

from cortexsim.adapters.base import AdapterError  # noqa: E402
from cortexsim.adapters.checkpoint import (  # noqa: E402
    file_sha256, list_checkpoints, load_checkpoint, load_latest_checkpoint)
from cortexsim.adapters.trainer import Trainer, load_trained, read_log  # noqa: E402

TINY = dict(method="_tiny", arch="tiny", device="cpu", progress=False, data="lfw", batch_size=8)


def _flip_inside_tensor_data(path: Path) -> None:
    """Flip one byte in the middle of the largest stored tensor (torch's zip reader does not notice)."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    raw = bytearray(path.read_bytes())
    # local header: 30 bytes + name + extra; the stored (uncompressed) tensor bytes follow
    name_len = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len
    raw[start + info.file_size // 2] ^= 0x40
    with open(path, "r+b") as fh:  # in place: damages the inode (last.pt and its step file alike)
        fh.write(bytes(raw))


def test_damaged_checkpoint_is_detected_and_resume_falls_back(tmp_path):
    full = Trainer(**TINY, steps=6, seed=2)
    full.fit()
    Trainer(**TINY, steps=6, seed=2, checkpoint_every=2, out=tmp_path).fit(stop_at=6)
    ckpts = tmp_path / "checkpoints"
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000002.pt", "step_00000004.pt", "step_00000006.pt"]
    # one copy of the newest checkpoint: last.pt is the same file as step 6
    assert os.stat(ckpts / "last.pt").st_ino == os.stat(ckpts / "step_00000006.pt").st_ino
    assert (ckpts / "step_00000006.pt.sha256").read_text().split()[0] == file_sha256(ckpts / "last.pt")

    _flip_inside_tensor_data(ckpts / "last.pt")
    assert torch.load(ckpts / "last.pt", weights_only=True)["step"] == 6  # torch alone loads it happily
    with pytest.raises(AdapterError, match="fails its SHA-256 check"):
        load_checkpoint(ckpts / "last.pt")
    with pytest.warns(RuntimeWarning, match=r"skipped damaged checkpoint.*last\.pt.*step_00000006\.pt.*resuming "
                                            r"from step_00000004\.pt \(step 4\)"):
        path, state = load_latest_checkpoint(tmp_path)
    assert path.name == "step_00000004.pt" and state["step"] == 4
    # ... and resuming re-trains steps 5-6 from the good checkpoint: the same weights as never interrupted
    with pytest.warns(RuntimeWarning, match="resuming from step_00000004.pt"):
        resumed = Trainer.resume(tmp_path)
        resumed.fit()
    for k, v in full._net.state_dict().items():
        assert torch.equal(v, resumed._net.state_dict()[k]), k


def test_no_good_checkpoint_is_a_clear_error(tmp_path):
    Trainer(**TINY, steps=2, checkpoint_every=2, keep_last=1, out=tmp_path).fit()
    (tmp_path / "checkpoints" / "last.pt").unlink()
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"garbage")  # a new inode: the step file keeps its bytes
    assert load_latest_checkpoint(tmp_path)[0].name == "step_00000002.pt"
    (tmp_path / "checkpoints" / "step_00000002.pt").write_bytes(b"garbage")
    with pytest.raises(AdapterError, match="no checkpoint of .* loads"):
        Trainer.resume(tmp_path, steps=4).fit()


def test_resume_before_first_checkpoint_restarts_the_logs(tmp_path):
    """Killed before its first checkpoint: the resumed run must not append 3, 6 after the old 3, 6."""
    Trainer(**TINY, steps=9, log_every=3, checkpoint_every=9, out=tmp_path).fit(stop_at=6)
    assert [r["step"] for r in read_log(tmp_path)] == [3, 6]
    resumed = Trainer.resume(tmp_path)
    resumed.fit()
    assert [r["step"] for r in read_log(tmp_path)] == [3, 6, 9]
    csv_steps = [int(line.split(",")[0]) for line in (tmp_path / "metrics.csv").read_text().splitlines()[1:]]
    assert csv_steps == [3, 6, 9]


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00garbage", b"[1, 2]", b'{"trainer": {}}',
                                     b'{"trainer": {"bogus": 1}, "build": {}}'])
def test_corrupt_config_is_a_clear_error(tmp_path, content):
    Trainer(**TINY, steps=2, checkpoint_every=2, out=tmp_path).fit()
    (tmp_path / "config.json").write_bytes(content)
    with pytest.raises(AdapterError, match="config|unknown trainer settings"):
        Trainer.resume(tmp_path)
    with pytest.raises(AdapterError, match="config"):
        load_trained(tmp_path)


def test_corrupt_log_lines_are_dropped_with_a_warning(tmp_path):
    Trainer(**TINY, steps=6, log_every=2, checkpoint_every=6, out=tmp_path).fit()
    lines = (tmp_path / "log.jsonl").read_bytes().splitlines()
    (tmp_path / "log.jsonl").write_bytes(b"\n".join([lines[0], b"\xff\xfe{garbage", lines[2]]) + b"\n")
    with pytest.warns(RuntimeWarning, match="damaged at line 2"):
        assert [r["step"] for r in read_log(tmp_path)] == [2]
    (tmp_path / "log.jsonl").write_text(json.dumps({"no": "step"}) + "\n" + lines[1].decode() + "\n")
    with pytest.warns(RuntimeWarning, match="damaged at line 1"):
        assert read_log(tmp_path) == []


def test_non_finite_loss_stops_with_the_step(tmp_path):
    tr = Trainer(**TINY, steps=20, log_every=10, lr=1e30, checkpoint_every=20, out=tmp_path)
    with pytest.raises(AdapterError, match=r"training diverged: the loss became non-finite at step \d+ "
                                           r"\(lr 1e\+30.*Lower --lr"):
        tr.fit()
    assert list_checkpoints(tmp_path) == [] and not (tmp_path / "model.pt").exists()
