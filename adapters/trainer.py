"""One trainer for every topographic method: ``Trainer(...).fit()``.

>>> from cortexsim.adapters.trainer import Trainer
>>> tr = Trainer(method="channel", arch="resnet18", layout="grid2d", lam=1.0, data="digits",
...              steps=200, batch_size=64, out="runs/channel")
>>> history = tr.fit()                      # list of log records (dicts)
>>> cortex = tr.model.export_cortex()       # SimulatedCortex in the trained layout

Split by concern: the options are one :class:`~cortexsim.adapters.train_config.TrainConfig`
(defaults, checks, CLI flags, resume rule); the step and the loop are in
:mod:`cortexsim.adapters.loop`; the run folder's files in :mod:`cortexsim.adapters.run_folder`;
this module validates, resolves the method's defaults and sets everything up.

Run folder (``out=RUN_DIR``): ``config.json``, ``log.jsonl`` and ``metrics.csv``
(one record per log interval: task loss, total spatial loss and each layer's
unweighted spatial loss), ``curves.png``, ``checkpoints/`` (every
``checkpoint_every`` steps, atomic, keep-last-k) and ``model.pt`` (final
``state_dict``) — :func:`load_trained` rebuilds the net from these two.

Resuming (``resume=True`` or :meth:`Trainer.resume`) restores model, optimizer,
scheduler, RNG states, the log accumulator and the position in the data order
(per-epoch permutation seeded by ``(seed, epoch)``, consumed batches skipped,
per-sample augmentation seeded by ``(seed, epoch, index)``), so on CPU the
resumed run is bit-for-bit the uninterrupted one.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the same code runs DDP: one process per
GPU (NCCL) or CPU (gloo), each rank a disjoint shard of every epoch, logs
averaged over ranks, only rank 0 writes files.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .base import AdapterError, MethodSpec, TopographicNet, TrainContext, build_options, get_method
from .checkpoint import rng_state, set_rng_state
from .data import Augmented, EpochSampler, load_dataset, supervised_transform
from .loop import TrainingLoop, TrainModule, TrainStep  # noqa: F401  (TrainStep: old import path)
from .run_folder import RunFolder, _read_config, build_net, load_trained, read_log  # noqa: F401  (old paths)
from .schedule import SCHEDULERS, load_scheduler_state, make_scheduler
from .simclr import ProjectionHead, TwoViews, simclr_transform
from .train_config import TrainConfig

TASKS = ("supervised", "simclr")
OPTIMIZERS = ("sgd", "adam", "adamw")
#: Trainer arguments saved in config.json (old name; the table is :class:`TrainConfig`).
CONFIG_KEYS = TrainConfig.names()


def _dist_env() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from torchrun's environment variables (0, 0, 1 without them)."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
            int(os.environ.get("WORLD_SIZE", 1)))


class Trainer(TrainingLoop):
    """Train a registered topographic method (scikit-learn style: arguments are stored as given
    and checked when training is set up, by :meth:`fit` or the first access to :attr:`model`).

    Parameters
    ----------
    method : registered method name (``baseline``, ``tdann``, ``channel``, ``ws``, ``as``, ``reset``)
    arch : architecture name understood by the method (``resnet18`` …); None: the method's default
        (``defaults["arch"]``, else ``resnet18``)
    layout : unit/channel layout (None: the method's default)
    lam : spatial-loss weight λ ≥ 0 (None: the method's default)
    data : ``"digits"``, ``"lfw"`` or a folder (CIFAR-10/100 as torchvision lays it out, its binary
        version, or ImageNet-style class folders); see :func:`cortexsim.adapters.data.load_dataset`
    epochs, steps : training length; ``steps`` caps the number of optimizer steps. At least one.
        Neither given: the method's default ``epochs``.
    batch_size : images per step and process (under DDP the global batch is ``world_size ×`` this);
        None: the method's default, else 128
    lr, optimizer, weight_decay, momentum, nesterov, scheduler, warmup_fraction : None takes the method's
        ``defaults``, else SGD (momentum 0.9, weight decay 5e-4, lr 0.1) with a cosine schedule over
        all steps; Adam/AdamW: lr 1e-3, constant. A default SGD lr is scaled linearly by
        global batch / the method's default batch size. ``warmup_fraction`` of the steps warm up linearly.
    task : ``"supervised"`` or ``"simclr"`` (two views, projection head, NT-Xent with ``temperature``)
    augment : supervised augmentation, ``"reference"`` (None; the method's reference: ``"none"`` for
        ws/as, ``"tdann"`` for tdann, ``"standard"`` crop + flip for the others), ``"none"``,
        ``"standard"``, ``"flip"``, ``"tdann"`` (:func:`~cortexsim.adapters.data.supervised_transform`)
    simclr_strength, simclr_blur, simclr_min_scale : SimCLR views' colour-jitter strength, blur probability
        and smallest crop area (None: the method's reference — TDANN 1.0 / 0.5 / 0.08 as VISSL — else
        0.5 / 0 / 0.2; :func:`~cortexsim.adapters.simclr.simclr_transform`)
    device : ``"auto"`` (CUDA if present), ``"cpu"``, ``"cuda"``, ``"cuda:1"`` …
    amp : bf16 autocast (CUDA only; ignored on CPU)
    compile : wrap the training module in ``torch.compile``
    seed : seeds model init, data order, augmentation and all RNGs
    out : run folder; None trains without writing anything
    checkpoint_every : write a checkpoint every N steps (needs ``out``); ``keep_last`` are kept
    log_every : average and record losses every N steps (one host sync per interval)
    num_workers : DataLoader worker processes
    image_size : side in pixels (None: 32 for CIFAR/offline sets; image folders: the method's
        ``image_size`` default, else 224)
    layers : layers to regularise (None: the method's choice)
    method_kwargs : extra keyword arguments for the method's ``build``, over its
        :attr:`~cortexsim.adapters.base.MethodSpec.build_defaults` (e.g. Reset's ``n``)
    deterministic : ``torch.use_deterministic_algorithms`` and no cuDNN autotuning (CUDA)
    find_unused_parameters : DDP flag (None: the method's default, else False)
    swapopt : TDANN position pre-optimisation before the first step (TDANN's ``before_training`` hook,
        :func:`~cortexsim.adapters.tdann_positions.before_training`; 0 = off; TDANN only): rounds with
        ``swap_algorithm="cortexsim"``, squares visited per layer with ``swap_algorithm="tdann"``
    swapopt_images : training images whose responses drive the swaps
    swapopt_reference : run folder of a trained network (e.g. a baseline ResNet-18) whose responses
        drive the swaps, as in TDANN; None: the network's own initial responses
    resume : continue from ``out``'s last checkpoint if there is one
    progress : tqdm progress bar (rank 0)
    """

    def __init__(self, method: str = "baseline", arch: str | None = None, layout: str | None = None,
                 lam: float | None = None, data: str | os.PathLike = "digits", *,
                 out: str | os.PathLike | None = None, resume: bool = False, progress: bool = True,
                 **options: Any) -> None:
        unknown = sorted(set(options) - set(TrainConfig.names()))
        if unknown:
            raise TypeError(f"Trainer got unknown option(s) {unknown}; its options are: "
                            f"{', '.join(TrainConfig.names())} (and out, resume, progress).")
        self.config = TrainConfig(method=method, arch=arch, layout=layout, lam=lam, data=data, **options)
        self.out, self.resume_run, self.progress = out, resume, progress
        self.run_ = None if out is None else RunFolder(out)
        self._ready = False

    def __getattr__(self, name: str) -> Any:
        # The options read as attributes (tr.lam, tr.steps ...), as when they were stored one by one.
        if name != "config" and name in TrainConfig.names() and "config" in self.__dict__:
            return getattr(self.config, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in TrainConfig.names() and "config" in self.__dict__:
            setattr(self.config, name, value)
        else:
            super().__setattr__(name, value)

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def resume(cls, run_dir: str | os.PathLike, **overrides: Any) -> Trainer:
        """A Trainer continuing the run in ``run_dir`` from its ``config.json`` and last checkpoint.

        ``overrides`` may change e.g. ``steps`` / ``epochs`` (to train longer), ``device``,
        ``num_workers``; the model/data settings must stay as they were.
        """
        cfg_path = Path(run_dir) / "config.json"
        if not cfg_path.is_file():
            raise AdapterError(f"{str(run_dir)!r} has no config.json; it is not a cortexsim training run folder.")
        saved = dict(_read_config(run_dir)["trainer"])
        invocation = {k: overrides.pop(k) for k in ("progress",) if k in overrides}
        try:
            config = TrainConfig.from_saved(saved, **overrides)
        except AdapterError as exc:
            raise AdapterError(f"{str(cfg_path)!r}: {exc}") from None
        return cls(**config.to_dict(), out=run_dir, resume=True, **invocation)

    def get_params(self) -> dict[str, Any]:
        """The arguments as given (JSON-able), as saved in ``config.json["trainer"]``."""
        return self.config.to_dict()

    @property
    def model(self) -> TopographicNet:
        """The method's network (built on first access)."""
        self._setup()
        return self._net

    def export_cortex(self, **kwargs: Any):
        """``self.model.export_cortex(**kwargs)``: a SimulatedCortex in the trained layout."""
        return self.model.export_cortex(**kwargs)

    # ------------------------------------------------------------------ validation / setup
    def _validate(self) -> MethodSpec:
        spec = get_method(self.method)  # unknown method -> AdapterError listing the known ones
        self.config.validate()
        self.arch_ = self.arch or spec.defaults.get("arch", "resnet18")
        self._check_method_kwargs(spec)
        defaults = TrainConfig.defaults()
        foreign = [k for k in TrainConfig.method_options()
                   if k not in spec.train_options and getattr(self.config, k) != defaults[k]]
        if foreign:
            from .base import _REGISTRY

            owners = sorted(n for n, s in _REGISTRY.items() if set(foreign) & set(s.train_options))
            raise AdapterError(f"{', '.join(foreign)} {'is an option' if len(foreign) == 1 else 'are options'} of "
                               f"method(s) {', '.join(owners) or 'none'} (e.g. swapopt pre-optimises TDANN "
                               f"positions); method {self.method!r} does not take it. Leave it at its default.")
        self._epochs = self.epochs if self.epochs is not None or self.steps is not None else spec.defaults.get("epochs")
        if self._epochs is None and self.steps is None:
            raise AdapterError("give the training length: epochs=N and/or steps=N (maximum optimizer steps).")
        self._batch = int(self.batch_size or spec.defaults.get("batch_size", 128))
        warm = self.warmup_fraction if self.warmup_fraction is not None else spec.defaults.get("warmup_fraction", 0.0)
        self._warmup = float(warm)
        if self.checkpoint_every is not None and self.out is None:
            raise AdapterError("checkpoint_every needs a run folder: pass out=RUN_DIR.")
        if self.resume_run and self.out is None:
            raise AdapterError("resume=True needs the run folder to resume: pass out=RUN_DIR.")
        task = self.task or spec.defaults.get("task", "supervised")
        if task not in TASKS:
            raise AdapterError(f"task must be one of {TASKS}; got {task!r}.")
        opt = (self.optimizer or spec.defaults.get("optimizer", "sgd")).lower()
        if opt not in OPTIMIZERS:
            raise AdapterError(f"optimizer must be one of {OPTIMIZERS}; got {opt!r}.")
        sched = (self.scheduler or spec.defaults.get("scheduler", "cosine" if opt == "sgd" else "constant")).lower()
        if sched not in SCHEDULERS:
            raise AdapterError(f"scheduler must be one of {SCHEDULERS}; got {sched!r}.")
        lr = self.lr if self.lr is not None else spec.defaults.get("lr", 0.1 if opt == "sgd" else 1e-3)
        ref_batch = spec.defaults.get("batch_size")
        if self.lr is None and opt == "sgd" and ref_batch:
            # The paper's SGD lr belongs to its batch size: scale linearly with the global batch
            # (Goyal et al. 2017), or lr 0.1 at batch 32 diverges in the first steps.
            lr = lr * self._batch * int(os.environ.get("WORLD_SIZE", 1)) / ref_batch
        self._task, self._opt_name, self._sched_name, self._lr = task, opt, sched, float(lr)
        return spec

    def _check_method_kwargs(self, spec: MethodSpec) -> None:
        kw = self.method_kwargs
        if kw is None:
            return
        if not isinstance(kw, dict) or not all(isinstance(k, str) for k in kw):
            raise AdapterError(f"method_kwargs must be a dict of option name -> value; got {kw!r}.")
        allowed = build_options(spec)
        bad = sorted(set(kw) - set(allowed))
        if bad:
            own = sorted(set(bad) & {"arch", "layout", "lam", "layers", "seed", "image_size"})
            hint = f" ({', '.join(own)}: use their own arguments/flags)" if own else ""
            raise AdapterError(f"method {spec.name!r} has no build option(s) {bad}{hint}; its options are: "
                               f"{', '.join(allowed) or 'none'}.")

    def _resolve_device(self, local_rank: int) -> torch.device:
        name = str(self.device)
        if name == "auto":
            return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
        try:
            dev = torch.device(name)
        except RuntimeError:
            raise AdapterError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {name!r}.") from None
        if dev.type == "cuda":
            if not torch.cuda.is_available():
                raise AdapterError(f"device {name!r} requested but CUDA is not available; use device='cpu'.")
            if dev.index is None:
                dev = torch.device(f"cuda:{local_rank}")
        return dev

    def setup(self) -> Trainer:
        """Validate, load the data, build the model and optimizer, restore a checkpoint if resuming.

        Called by :meth:`fit`; call it directly to inspect ``step_``, ``total_steps_`` … first.
        """
        self._setup()
        return self

    def _setup(self) -> None:
        if self._ready:
            return
        spec = self._validate()
        self.rank_, local_rank, self.world_size_ = _dist_env()
        self.device_ = self._resolve_device(local_rank)
        self._owns_pg = False
        if self.world_size_ > 1:
            import torch.distributed as dist

            if self.device_.type == "cuda":
                torch.cuda.set_device(self.device_)
            if not dist.is_initialized():
                dist.init_process_group("nccl" if self.device_.type == "cuda" else "gloo")
                self._owns_pg = True
        cuda = self.device_.type == "cuda"
        if cuda:
            torch.backends.cudnn.benchmark = not self.deterministic
            torch.set_float32_matmul_precision("high")
        if self.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        torch.manual_seed(self.seed)
        np.random.seed(self.seed % 2**32)
        random.seed(self.seed)

        # Data
        images = load_dataset(self.data, train=True, image_size=self.image_size,
                              folder_size=spec.train_defaults.get("image_size"))
        size = images.image_size
        transform = self._transform(spec, size, images.in_memory)
        self._dataset = Augmented(images.base, transform, seed=self.seed)
        self.num_classes_ = images.num_classes
        self.batches_per_epoch_ = EpochSampler.batches_per_epoch(len(images), self._batch, self.world_size_)
        if self.batches_per_epoch_ < 1:
            raise AdapterError(f"batch_size={self._batch} × {self.world_size_} process(es) is larger than the "
                               f"{len(images)} training images of {self.data!r}; use a smaller batch_size.")
        by_epochs = None if self._epochs is None else self._epochs * self.batches_per_epoch_
        self.total_steps_ = min(s for s in (self.steps, by_epochs) if s is not None)

        # Model (unknown arch / layer errors come from the method's build)
        lam = self.lam if self.lam is not None else spec.defaults.get("lam")
        layout = self.layout if self.layout is not None else spec.defaults.get("layout")
        self._build = {"method": self.method, "arch": self.arch_, "num_classes": self.num_classes_,
                       "layout": layout, "lam": lam, "layers": None if self.layers is None else list(self.layers),
                       "seed": self.seed, "image_size": size,
                       "kw": {**spec.build_defaults, **(self.method_kwargs or {})}}
        self._net = build_net(self._build)
        mem = torch.channels_last if cuda else torch.preserve_format
        self._net.to(self.device_, memory_format=mem)
        head = None
        if self._task == "simclr":
            head = ProjectionHead(self._feature_dim(size)).to(self.device_)
        self._module = TrainModule(self._net, head)
        wrapped: nn.Module = self._module
        if self.world_size_ > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            unused = self.find_unused_parameters
            if unused is None:
                unused = bool(spec.defaults.get("find_unused_parameters", False))
            wrapped = DDP(self._module, device_ids=[self.device_.index] if cuda else None,
                          find_unused_parameters=unused)
        if self.compile:
            wrapped = torch.compile(wrapped)
        self._optim = self._make_optimizer(spec)
        self._sched = make_scheduler(self._optim, self.total_steps_, round(self._warmup * self.total_steps_),
                                     self._sched_name)
        self._stepper = TrainStep(wrapped, self._net, self._optim, self._sched, task=self._task,
                                  temperature=self.temperature, amp=self.amp, device=self.device_,
                                  channels_last=cuda)
        self.step_, self.epoch_, self.batch_in_epoch_ = 0, 0, 0
        self._acc: torch.Tensor | None = None
        self._first_bad = torch.full((), -1, dtype=torch.int64, device=self.device_)
        self._acc_n = 0
        self._train_time = 0.0
        self.history_: list[dict[str, Any]] = []
        self._resolved = {"optimizer": self._opt_name, "lr": self._lr, "scheduler": self._sched_name,
                          "task": self._task, "total_steps": self.total_steps_, "world_size": self.world_size_,
                          "batch_size": self._batch, "global_batch_size": self._batch * self.world_size_, "dataset": images.name,
                          "n_train": len(images), "device": str(self.device_),
                          "amp_bf16": bool(self.amp and cuda), "torch": torch.__version__, **self._resolved_aug}
        self._ready = True
        if self.resume_run:
            self._load_latest()
        if spec.before_training is not None and self.step_ == 0:  # a resumed run has the effect in its checkpoint
            ctx = TrainContext(self._net, self._dataset, self.config, self._task, self.device_, self.rank_ == 0,
                               bool(self.progress) and self.rank_ == 0)
            self._resolved.update(spec.before_training(ctx) or {})
        if self.out is not None and self.rank_ == 0:
            self._write_config()

    def _transform(self, spec: MethodSpec, size: int, in_memory: bool):
        """The task's augmentation; options left at None / "reference" take the method's reference."""
        d = spec.train_defaults
        if self._task == "simclr":
            view = {k: getattr(self, f"simclr_{k}") if getattr(self, f"simclr_{k}") is not None
                    else d.get(f"simclr_{k}", default) for k, default in
                    (("strength", 0.5), ("blur", 0.0), ("min_scale", 0.2))}
            self._resolved_aug = {f"simclr_{k}": v for k, v in view.items()}
            return TwoViews(simclr_transform(size, **view))
        augment = self.augment if self.augment not in (None, "reference") else d.get("augment", "standard")
        self._resolved_aug = {"augment": augment}
        return supervised_transform(size, in_memory, augment)

    def _feature_dim(self, size: int | tuple[int, int]) -> int:
        """Width of ``features()`` for (H, W) = ``size`` images with the network's own input channels."""
        from cortexsim.capture import evaluating

        from .archs import input_channels

        h, w = (size, size) if isinstance(size, int) else size
        # Eval mode and no grad: no BN statistics update and no dropout draw, so probing leaves no trace.
        with evaluating(self._net):
            x = torch.zeros(2, input_channels(self._net), h, w, device=self.device_)
            return int(self._net.features(x).flatten(1).shape[1])

    def _make_optimizer(self, spec: MethodSpec) -> torch.optim.Optimizer:
        d = spec.defaults
        params = [p for p in self._module.parameters() if p.requires_grad]
        if self._opt_name == "sgd":
            wd = self.weight_decay if self.weight_decay is not None else d.get("weight_decay", 5e-4)
            mom = self.momentum if self.momentum is not None else d.get("momentum", 0.9)
            nesterov = bool(self.nesterov if self.nesterov is not None else d.get("nesterov", False))
            self._resolved_opt = {"weight_decay": wd, "momentum": mom, "nesterov": nesterov}
            return torch.optim.SGD(self._decay_groups(params, wd, d), lr=self._lr, momentum=mom, weight_decay=wd,
                                   nesterov=nesterov and mom > 0)
        wd = self.weight_decay if self.weight_decay is not None else d.get("weight_decay", 0.0)
        self._resolved_opt = {"weight_decay": wd}
        cls = torch.optim.Adam if self._opt_name == "adam" else torch.optim.AdamW
        return cls(params, lr=self._lr, weight_decay=wd)

    def _decay_groups(self, params: list, wd: float, d: dict[str, Any]) -> list:
        """Parameter groups: without weight decay on normalisation layers when the method's
        ``defaults["weight_decay_norm"]`` is False (TDANN/VISSL ``regularize_bn: false``)."""
        if d.get("weight_decay_norm", True) or not wd:
            return params
        norm = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
        no_decay = {id(p) for m in self._module.modules() if isinstance(m, norm) for p in m.parameters(recurse=False)}
        self._resolved_opt["weight_decay_norm"] = False
        groups = [{"params": [p for p in params if id(p) not in no_decay]},
                  {"params": [p for p in params if id(p) in no_decay], "weight_decay": 0.0}]
        return [g for g in groups if g["params"]]

    # ------------------------------------------------------------------ files
    def _write_config(self) -> None:
        self.run_.write_config(self.get_params(), self._build, {**self._resolved, **self._resolved_opt})

    def _checkpoint_state(self) -> dict[str, Any]:
        return {
            "model": self._net.state_dict(),
            "head": self._module.head.state_dict() if self._module.head is not None else {},
            "optimizer": self._optim.state_dict(),
            "scheduler": self._sched.state_dict(),
            "step": self.step_, "epoch": self.epoch_, "batch_in_epoch": self.batch_in_epoch_,
            "rng": rng_state(),
            "acc": None if self._acc is None else self._acc.cpu(), "acc_n": self._acc_n,
            "layer_names": self._stepper.layer_names, "train_time": self._train_time,
            "config": self.get_params(),
        }

    def _load_latest(self) -> None:
        found = self.run_.latest_checkpoint()
        if found is None:
            # Killed before its first checkpoint: training restarts at step 0, so the logs of the
            # lost steps go (else the new records would be appended after them: 3, 6, 3, 6, ...).
            self.history_ = []
            if self.rank_ == 0:
                self.run_.clear_logs()
            return
        path, state = found
        try:
            self._restore(state)
        except KeyError as exc:
            raise AdapterError(f"checkpoint {str(path)!r} lacks the entry {exc}; it was not written by this "
                               f"trainer. Start a new run folder.") from None

    def _restore(self, state: dict[str, Any]) -> None:
        old = state["config"]
        # Keys added after a run was written read as their defaults (runs stay resumable across versions).
        changed = self.config.changed_on_resume(old)
        if changed:
            was = ", ".join(f"{k}={old.get(k)!r}" for k in changed)
            raise AdapterError(f"cannot resume {str(self.out)!r}: {', '.join(changed)} differ from the run's "
                               f"config ({was}); keep them as they were or start a new run folder.")
        self._net.load_state_dict(state["model"])
        if self._module.head is not None:
            self._module.head.load_state_dict(state["head"])
        self._optim.load_state_dict(state["optimizer"])
        load_scheduler_state(self._sched, state["scheduler"])
        self.step_, self.epoch_, self.batch_in_epoch_ = state["step"], state["epoch"], state["batch_in_epoch"]
        self._stepper.layer_names = state["layer_names"]
        self._acc = None if state["acc"] is None else state["acc"].to(self.device_)
        self._acc_n, self._train_time = state["acc_n"], state["train_time"]
        set_rng_state(state["rng"])
        # Records logged after the checkpoint (before the interruption) are dropped: they are re-made.
        self.history_ = [r for r in self.run_.read_log() if r["step"] <= self.step_]
        if self.rank_ == 0:
            self.run_.rewrite_logs(self.history_)
