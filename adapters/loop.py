"""The training step and loop: :class:`TrainModule`, :class:`TrainStep` and :class:`TrainingLoop` (``fit``).

What it does on every step: forward through the method's
:class:`~cortexsim.adapters.base.TopographicNet` (bf16 autocast on CUDA,
channels_last), task loss (cross-entropy / the method's own, or SimCLR NT-Xent
on a projection head) + the method's weighted spatial loss, backward, optimizer
and scheduler step. Loss values stay on the device and are averaged over
``log_every`` steps, so the host syncs once per log interval.
"""
from __future__ import annotations

import math
import time
from typing import Any

import torch
from torch import nn

from .base import AdapterError, TopographicNet
from .data import EpochSampler
from .simclr import nt_xent


class TrainModule(nn.Module):
    """The network plus the SimCLR head (if any) as one module, so DDP / compile / checkpoints see both.

    ``forward(x) -> (output, spatial_total, per_layer)``: the spatial loss is read
    inside ``forward`` so that, under DDP, every gradient path goes through the
    wrapped call.
    """

    def __init__(self, net: TopographicNet, head: nn.Module | None = None) -> None:
        super().__init__()
        self.net = net
        self.head = head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        out = self.head(self.net.features(x)) if self.head is not None else self.net(x)
        total, per_layer = self.net.spatial_loss()
        return out, total, per_layer


class TrainStep:
    """One optimisation step, with no host sync: ``step(x, y) -> (3 + n_layers,) float32 on device``.

    The returned vector is ``[loss, task_loss, spatial_loss, per-layer spatial …]``
    (detached); ``layer_names`` gives the order of the per-layer entries, fixed
    at the first call. Shared by :class:`Trainer` and ``benchmarks/train_bench.py``.
    """

    def __init__(self, module: nn.Module, net: TopographicNet, optimizer: torch.optim.Optimizer,
                 scheduler: Any | None = None, *, task: str = "supervised", temperature: float = 0.1,
                 amp: bool = False, device: torch.device | str = "cpu", channels_last: bool = False) -> None:
        self.module, self.net, self.optimizer, self.scheduler = module, net, optimizer, scheduler
        self.task, self.temperature = task, float(temperature)
        self.device = torch.device(device)
        self.amp = bool(amp) and self.device.type == "cuda"
        self.channels_last = channels_last
        self.layer_names: list[str] | None = None

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.task == "simclr":  # x: (B, 2, C, H, W) -> both views in one batch of 2B
            x = torch.cat([x[:, 0], x[:, 1]])
        x = self._to_device(x)
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            out, spatial, per_layer = self.module(x)
            if self.task == "simclr":
                half = out.shape[0] // 2
                task = nt_xent(out[:half], out[half:], self.temperature)
            else:
                task = self.net.task_loss(out, y.to(self.device, non_blocking=True))
            loss = task + spatial
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        if self.layer_names is None:
            self.layer_names = list(per_layer)
        zero = loss.new_zeros(())
        parts = [loss, task, spatial] + [per_layer.get(k, zero) for k in self.layer_names]
        return torch.stack([p.detach().float().reshape(()) for p in parts])




class TrainingLoop:
    """``fit`` and what it calls; mixed into :class:`~cortexsim.adapters.trainer.Trainer`, whose set-up
    provides the state (``_stepper``, ``_dataset``, ``_sched``, ``run_``, ``step_`` …)."""

    def _log(self) -> None:
        acc = self._acc / max(self._acc_n, 1)
        if self.world_size_ > 1:
            import torch.distributed as dist

            dist.all_reduce(acc)
            acc /= self.world_size_
        vals = acc.tolist()  # the one host sync of the interval
        if not math.isfinite(vals[0]):
            self._check_finite(force=True)
        names = ["loss", "task_loss", "spatial_loss"] + [f"spatial/{k}" for k in self._stepper.layer_names or []]
        rec = {"step": self.step_, "epoch": self.epoch_, "lr": self._sched.get_last_lr()[0],
               **dict(zip(names, vals)), "steps_averaged": self._acc_n, "time_s": round(self._train_time, 3)}
        self._acc, self._acc_n = None, 0
        self.history_.append(rec)
        if self.out is not None and self.rank_ == 0:
            self.run_.append_log(rec)

    def fit(self, stop_at: int | None = None) -> list[dict[str, Any]]:
        """Train until ``total_steps_`` (from ``steps`` / ``epochs``); returns the log records.

        ``stop_at`` stops early after that global step without changing the schedule
        (used to cut a run into pieces; the next :meth:`resume` continues it).
        """
        from tqdm.auto import tqdm

        self._setup()
        end = self.total_steps_ if stop_at is None else min(self.total_steps_, int(stop_at))
        bar = tqdm(total=self.total_steps_, initial=self.step_, desc=f"train {self.method}", unit="step",
                   disable=None if (self.progress and self.rank_ == 0) else True, leave=False)  # None: a tty only
        self._net.train()
        try:
            while self.step_ < end:
                if self.batch_in_epoch_ >= self.batches_per_epoch_:
                    self.epoch_, self.batch_in_epoch_ = self.epoch_ + 1, 0
                for x, y in self._loader():
                    t0 = time.perf_counter()
                    vec = self._stepper(x, y)
                    # First step with a non-finite loss, tracked on the device (no host sync per step).
                    hit = ~torch.isfinite(vec[0]) & (self._first_bad < 0)
                    self._first_bad = torch.where(hit, self._first_bad.new_full((), self.step_ + 1), self._first_bad)
                    self._acc = vec if self._acc is None else self._acc + vec
                    self._acc_n += 1
                    self.step_ += 1
                    self.batch_in_epoch_ += 1
                    self._train_time += time.perf_counter() - t0
                    bar.update(1)
                    if self.step_ % self.log_every == 0 or self.step_ == self.total_steps_:
                        self._log()
                        bar.set_postfix(loss=f"{self.history_[-1]['loss']:.4g}")
                    if self.checkpoint_every and self.step_ % self.checkpoint_every == 0 and self.rank_ == 0:
                        if self.world_size_ == 1:  # never checkpoint a diverged model (DDP checks at _log)
                            self._check_finite()
                        self.run_.save_checkpoint(self._checkpoint_state(), self.step_, keep=self.keep_last)
                    if self.step_ >= end:
                        break
            if self.world_size_ > 1:
                self._sync_buffers()
            self._check_finite()
            if self.step_ >= self.total_steps_ and self.out is not None and self.rank_ == 0:
                self._finish()
        finally:
            bar.close()
            if self._owns_pg and self.step_ >= end:
                import torch.distributed as dist

                dist.barrier()
                dist.destroy_process_group()
                self._owns_pg = False
        return self.history_

    def _check_finite(self, force: bool = False) -> None:
        """Stop with a clear error once a step's loss was NaN/Inf (reports the first such step)."""
        step = int(self._first_bad.item())
        if step < 0 and not force:
            return
        lam = self._build.get("lam")
        where = f"at step {step}" if step >= 0 else f"on another process by step {self.step_}"
        raise AdapterError(
            f"training diverged: the loss became non-finite {where} (lr {self._lr:g}"
            f"{'' if lam is None else f', lam {lam:g}'}); the model's weights are no longer usable and nothing "
            f"from that step on was checkpointed. Lower --lr (or --lam), or check the training data.")

    def _sync_buffers(self) -> None:
        # DDP broadcasts buffers (BN running statistics) from rank 0 before each forward, so after
        # the last step every rank holds its own; copy rank 0's so all ranks end with one model.
        import torch.distributed as dist

        for buf in self._module.buffers():
            dist.broadcast(buf, src=0)

    def _loader(self) -> torch.utils.data.DataLoader:
        self._dataset.set_epoch(self.epoch_)
        sampler = EpochSampler(len(self._dataset), self._batch, seed=self.seed, epoch=self.epoch_,
                               rank=self.rank_, world_size=self.world_size_, start_batch=self.batch_in_epoch_)
        # A private generator: creating the iterator must not draw from the global RNG (resume equality).
        gen = torch.Generator().manual_seed(self.seed * 7_919 + self.epoch_)
        return torch.utils.data.DataLoader(self._dataset, batch_size=self._batch, sampler=sampler,
                                           drop_last=True, num_workers=self.num_workers, generator=gen,
                                           pin_memory=self.device_.type == "cuda")

    def _finish(self) -> None:
        if self.checkpoint_every and self.step_ % self.checkpoint_every:
            self.run_.save_checkpoint(self._checkpoint_state(), self.step_, keep=self.keep_last)
        self.run_.write_model(self._net.state_dict())
        if self.history_:
            from cortexsim.plotting.training import plot_curves  # matplotlib only when a run finishes

            plot_curves(self.history_, self.run_.path / "curves.png", title=f"{self.method} / {self.arch_}")

