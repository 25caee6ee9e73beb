"""The learning-rate schedule: linear warm-up, then cosine to 0 or constant, stepped once per optimizer step.

Built from torch's own schedulers (``SequentialLR(LinearLR, CosineAnnealingLR)``), so its
``state_dict`` is torch's and resuming restores it exactly. Per step ``t`` (0-based, before the
``t``-th ``scheduler.step()``) the factor on the base lr is

* ``(t + 1) / W`` for ``t < W`` (``W`` warm-up steps; the first step is not at lr 0),
* then ``½ (1 + cos(π (t − W) / max(1, T − W)))`` (``"cosine"``, ``T`` total steps) or 1 (``"constant"``).
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR

SCHEDULERS = ("cosine", "constant")


def lr_factor(t: int, total: int, warmup: int = 0, kind: str = "cosine") -> float:
    """The schedule's factor at step ``t`` in closed form (the reference :func:`make_scheduler` is tested against)."""
    if t < warmup:
        return (t + 1) / warmup
    if kind == "constant":
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * (t - warmup) / max(1, total - warmup)))


def make_scheduler(optimizer: torch.optim.Optimizer, total: int, warmup: int = 0, kind: str = "cosine") -> LRScheduler:
    """A torch scheduler giving ``base_lr · lr_factor(t, total, warmup, kind)`` at step ``t``.

    total : optimizer steps of the whole run (≥ 1); warmup : warm-up steps, 0 ≤ warmup < total
    """
    if warmup == 0 and kind == "cosine":  # SequentialLR needs a milestone > 0: the cosine alone is the schedule
        return CosineAnnealingLR(optimizer, T_max=max(1, total), eta_min=0.0)
    # LinearLR's factor is start + (1 − start)·min(t, n)/n: with start = 1/W and n = W − 1 it is (t + 1)/W.
    warm = LinearLR(optimizer, start_factor=1.0 / max(warmup, 1), end_factor=1.0, total_iters=max(warmup - 1, 1))
    if kind == "constant":
        return warm  # factor 1 after the warm-up (and throughout without one)
    cosine = CosineAnnealingLR(optimizer, T_max=max(1, total - warmup), eta_min=0.0)
    return SequentialLR(optimizer, [warm, cosine], milestones=[warmup])


def load_scheduler_state(scheduler: LRScheduler, state: dict[str, Any]) -> None:
    """Restore ``scheduler`` from a checkpoint's ``state``.

    Checkpoints written before the schedule was built from torch's schedulers hold a
    ``LambdaLR`` state: the schedule is then stepped forward to its ``last_epoch`` (same values).
    """
    if "lr_lambdas" in state:
        with warnings.catch_warnings():  # "lr_scheduler.step() before optimizer.step()": intended here
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(int(state["last_epoch"])):
                scheduler.step()
        return
    scheduler.load_state_dict(state)
