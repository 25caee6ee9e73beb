"""Kill a training process with SIGKILL after its first checkpoint, resume, and match an uninterrupted run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import test_trainer_tiny  # noqa: E402,F401

from cortexsim.adapters.trainer import Trainer, load_trained, read_log  # noqa: E402

HERE = Path(__file__).parent
ARGS = ["train", "--method", "_tiny", "--arch", "tiny", "--data", "lfw", "--steps", "40", "--batch-size", "8",
        "--checkpoint-every", "3", "--log-every", "2", "--device", "cpu", "--seed", "2", "--no-progress"]

# The child sleeps 50 ms per step so the kill lands mid-run; sleeping changes no numbers.
# It uses the parent's intra-op thread count: CPU reductions split differently across
# threads, and the comparison below is bit-for-bit.
CHILD = f"""
import sys, time, torch
torch.set_num_threads(__THREADS__)
sys.path.insert(0, {str(HERE)!r})
import test_trainer_tiny
from cortexsim.adapters import trainer as T
step = T.TrainStep.__call__
def slow(self, x, y):
    time.sleep(0.05)
    return step(self, x, y)
T.TrainStep.__call__ = slow
from cortexsim.adapters.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigkill_mid_training_then_resume(tmp_path):
    run = tmp_path / "run"
    child = CHILD.replace("__THREADS__", str(torch.get_num_threads()))
    proc = subprocess.Popen([sys.executable, "-c", child, *ARGS, "--out", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    last = run / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 60
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    assert last.exists() and not (run / "model.pt").exists()   # killed before the end

    resumed = Trainer.resume(run, progress=False).setup()
    assert 3 <= resumed.step_ < 40
    history = resumed.fit()
    assert resumed.step_ == 40 and (run / "model.pt").exists()
    steps = [r["step"] for r in read_log(run)]
    assert steps == list(range(2, 41, 2)) and [r["step"] for r in history] == steps

    # Same numbers as an uninterrupted in-process run of the same configuration.
    ref = Trainer(method="_tiny", arch="tiny", data="lfw", steps=40, batch_size=8, log_every=2, device="cpu",
                  seed=2, progress=False)
    ref_hist = ref.fit()
    net = load_trained(run)
    for (k, a), b in zip(ref.model.state_dict().items(), net.state_dict().values()):
        assert torch.equal(a, b), k
    assert [r["loss"] for r in history] == [r["loss"] for r in ref_hist]
