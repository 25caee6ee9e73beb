"""The lr schedule (torch's SequentialLR(LinearLR, CosineAnnealingLR)): the old hand-made values, and resume."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import test_trainer_tiny  # noqa: E402,F401  registers the "_tiny" method

from cortexsim.adapters.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from cortexsim.adapters.schedule import make_scheduler  # noqa: E402
from cortexsim.adapters.trainer import Trainer  # noqa: E402

TINY = dict(method="_tiny", arch="tiny", device="cpu", progress=False, data="lfw", batch_size=16)


def old_factor(t: int, total: int, warmup: int, kind: str) -> float:
    """The trainer's schedule before torch's schedulers (LambdaLR over this factor), written out again."""
    if t < warmup:
        return (t + 1) / warmup
    return 1.0 if kind == "constant" else 0.5 * (1 + math.cos(math.pi * (t - warmup) / max(1, total - warmup)))


def _lrs(sched, opt, n):
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out + [opt.param_groups[0]["lr"]]


@pytest.mark.parametrize("total, warmup, kind", [(20, 0, "cosine"), (20, 1, "cosine"), (20, 6, "cosine"),
                                                 (300, 90, "cosine"), (9, 3, "constant"), (5, 0, "constant"),
                                                 (1, 0, "cosine")])
def test_the_schedule_gives_the_old_per_step_values(total, warmup, kind):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.3)
    got = _lrs(make_scheduler(opt, total, warmup, kind), opt, total)
    want = [0.3 * old_factor(t, total, warmup, kind) for t in range(total + 1)]
    assert got == pytest.approx(want, abs=1e-9, rel=0)
    if kind == "cosine":
        assert got[-1] == pytest.approx(0.0, abs=1e-12) and max(got) == pytest.approx(0.3)


def test_the_trainer_logs_the_scheduled_lr_and_a_resume_restores_the_schedule(tmp_path):
    kw = dict(**TINY, steps=10, log_every=1, lr=0.2, scheduler="cosine", warmup_fraction=0.3, checkpoint_every=4)
    full = Trainer(out=tmp_path / "full", **kw)
    lrs = [r["lr"] for r in full.fit()]  # logged after step s: the lr of step s + 1 (index s)
    assert lrs == pytest.approx([0.2 * old_factor(s, 10, 3, "cosine") for s in range(1, 11)], abs=1e-9, rel=0)

    Trainer(out=tmp_path / "cut", **kw).fit(stop_at=6)  # checkpoint at 4
    resumed = Trainer.resume(tmp_path / "cut").setup()
    assert resumed.step_ == 4 and resumed._sched.last_epoch == 4
    assert resumed._optim.param_groups[0]["lr"] == pytest.approx(0.2 * old_factor(4, 10, 3, "cosine"), abs=1e-12)
    assert [r["lr"] for r in resumed.fit()] == lrs


def test_a_checkpoint_with_the_old_lambdalr_state_resumes_on_the_same_schedule(tmp_path):
    kw = dict(**TINY, steps=8, log_every=1, lr=0.2, warmup_fraction=0.25, checkpoint_every=5)
    full = Trainer(out=tmp_path / "full", **kw)
    lrs = [r["lr"] for r in full.fit()]
    Trainer(out=tmp_path / "cut", **kw).fit(stop_at=5)
    ckpt = tmp_path / "cut" / "checkpoints" / "step_00000005.pt"
    state = load_checkpoint(ckpt)
    state["scheduler"] = {"base_lrs": [0.2], "last_epoch": 5, "_step_count": 6, "_get_lr_called_within_step": False,
                          "_last_lr": [0.2 * old_factor(5, 8, 2, "cosine")], "lr_lambdas": [{"total": 8, "warmup": 2}]}
    save_checkpoint(tmp_path / "cut", state, 5)
    resumed = Trainer.resume(tmp_path / "cut")
    assert [r["lr"] for r in resumed.fit()] == pytest.approx(lrs, abs=1e-12)
