"""A short training loop on in-memory tensors with a held-out split.

:class:`cortexsim.adapters.trainer.Trainer` trains on all of an offline set (``digits``,
``lfw``) with crop + flip augmentation; the study needs a held-out split, and Reset's
number task needs soft targets (100-dimensional number codes), which that trainer has no
data path for. This loop does only what the study needs: the method's own optimiser recipe
(``MethodSpec.defaults``: optimiser, lr, momentum, weight decay, lr schedule — e.g. Adam 1e-3 for WS / AS
and Reset, as their references), no augmentation (as Truong & Hasson's and Hannagan's
scripts), a seeded batch order, one log record every ``log_every`` steps, training and
held-out accuracy at the end, and **one** saved model (``model.pt``, no intermediate
checkpoints) next to a ``config.json`` in the trainer's format, so
:func:`cortexsim.adapters.trainer.load_trained` and ``cortexsim record --run RUN_DIR`` read
the run like any other.

Why a separate loop and not :class:`~cortexsim.adapters.trainer.Trainer`: the Trainer's data
path is a named dataset loaded whole (``load_dataset``) behind its augmentation, and its run
folder carries resume state (checkpoints, RNG states, ``metrics.csv``, ``curves.png``, DDP).
The study needs in-memory tensors with a held-out split, optional soft targets, an accuracy
on the held-out part at the end and a single ``model.pt``. What is shared is the per-step
arithmetic (forward, ``task_loss`` + ``spatial_loss``, backward, optimiser and scheduler step:
``adapters.trainer.TrainStep``) and the optimiser recipe (``Trainer._make_optimizer``); this
loop repeats both in a few lines. It does not split off normalisation parameters from weight
decay (``defaults["weight_decay_norm"]``, TDANN only), so TDANN is trained with the Trainer
(``reproductions/tdann``). To merge the two, the Trainer's loop would need to take an iterable
of ``(x, y)`` batches (or tensors) instead of its dataset, targets mapped through a code table,
an evaluation callback at the end, and a run folder limited to ``config.json`` + ``model.pt``.
"""
from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def accuracy(outputs, labels, codes=None) -> float:
    """Fraction correct: argmax of the logits, or (``codes`` given) the code nearest in cosine.

    outputs : (N, K) logits or (N, D) outputs; labels : (N,) int; codes : (K, D), optional.
    """
    if codes is None:
        return float(outputs.argmax(dim=1).eq(labels).float().mean())
    return decode_accuracy(outputs, labels, codes)


def decode_accuracy(outputs, targets, codes) -> float:
    """Fraction of items whose output is closest (cosine) to its own code among ``codes``.

    outputs : (N, D) sigmoid outputs; targets : (N,) int class index; codes : (C, D) codes.
    """
    import torch

    o = torch.nn.functional.normalize(outputs.float(), dim=1)
    c = torch.nn.functional.normalize(codes.float(), dim=1)
    return float((o @ c.T).argmax(dim=1).eq(targets).float().mean())


def recipe(method: str, **overrides: Any) -> dict[str, Any]:
    """The method's optimiser settings from ``MethodSpec.defaults`` (``overrides`` win).

    Keys: ``optimizer`` (adam | sgd | adamw), ``lr``, ``batch_size``, ``momentum``, ``weight_decay``,
    ``nesterov``, ``scheduler`` (cosine | constant), ``warmup_fraction``. A default SGD lr is scaled
    linearly to the batch used, as the Trainer does.
    """
    from ..adapters import get_method

    d = get_method(method).defaults
    opt = str(overrides.get("optimizer") or d.get("optimizer", "sgd")).lower()
    batch = int(overrides.get("batch_size") or d.get("batch_size", 128))
    lr = overrides.get("lr")
    if lr is None:
        lr = d.get("lr", 0.1 if opt == "sgd" else 1e-3)
        if opt == "sgd" and d.get("batch_size"):
            lr = lr * batch / d["batch_size"]
    out = {"optimizer": opt, "lr": float(lr), "batch_size": batch,
           "weight_decay": float(overrides.get("weight_decay", d.get("weight_decay", 5e-4 if opt == "sgd" else 0.0)))}
    if opt == "sgd":
        out["momentum"] = float(overrides.get("momentum", d.get("momentum", 0.9)))
        out["nesterov"] = bool(overrides.get("nesterov", d.get("nesterov", False)))
    out["scheduler"] = str(overrides.get("scheduler") or d.get("scheduler", "cosine" if opt == "sgd" else "constant"))
    out["warmup_fraction"] = float(overrides.get("warmup_fraction", d.get("warmup_fraction", 0.0)))
    return out


def _optimizer(params, rec: dict[str, Any]):
    import torch

    if rec["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=rec["lr"], momentum=rec["momentum"], weight_decay=rec["weight_decay"],
                               nesterov=rec["nesterov"] and rec["momentum"] > 0)
    cls = torch.optim.Adam if rec["optimizer"] == "adam" else torch.optim.AdamW
    return cls(params, lr=rec["lr"], weight_decay=rec["weight_decay"])


def train_in_memory(
    run_dir: str | Path,
    build: Mapping[str, Any],
    images,
    labels,
    *,
    steps: int,
    codes=None,
    recipe_overrides: Mapping[str, Any] | None = None,
    seed: int = 0,
    heldout: tuple[Any, Any] | None = None,
    log_every: int = 10,
    progress: bool = True,
    desc: str = "train",
    device: str = "cpu",
) -> dict[str, Any]:
    """Train the network of ``build`` (a ``config.json["build"]`` dict) on in-memory tensors.

    Parameters
    ----------
    run_dir : folder receiving ``config.json``, ``log.jsonl`` and ``model.pt``.
    images : float tensor (N, C, H, W) in [0, 1]; labels : int64 tensor (N,).
    steps : optimiser steps; the batch order is a new seeded permutation every epoch.
    codes : float tensor (K, D), optional — soft targets: class ``k`` is trained towards
        ``codes[k]`` (Reset's number codes, binary cross-entropy); None: class labels.
    recipe_overrides : changes to :func:`recipe` of ``build["method"]``.
    seed : seeds the batch order (the weights are seeded by ``build["seed"]``).
    heldout : (images, labels) scored at the end with :func:`accuracy`.
    device : torch device (the data is moved there once; it is small).

    Returns
    -------
    dict: ``history`` (log records), ``train_accuracy``, ``heldout_accuracy``, ``seconds``, ``recipe``.
    """
    import torch
    from tqdm.auto import tqdm

    from ..adapters.schedule import make_scheduler
    from ..adapters.trainer import build_net
    from ..io import atomic_path
    from ..seeding import derive_seed, seeded

    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    rec = recipe(build["method"], **dict(recipe_overrides or {}))
    batch = min(rec["batch_size"], len(images))
    dev = torch.device(device)
    net = build_net(dict(build)).to(dev)
    images, labels = images.to(dev), labels.to(dev)
    codes = None if codes is None else codes.to(dev)
    heldout = None if heldout is None else (heldout[0].to(dev), heldout[1].to(dev))
    opt = _optimizer(net.parameters(), rec)
    sched = make_scheduler(opt, steps, round(rec["warmup_fraction"] * steps), rec["scheduler"])
    gen = torch.Generator().manual_seed(int(seed))
    per_epoch = max(1, len(images) // batch)
    targets = labels if codes is None else codes[labels]
    history: list[dict[str, Any]] = []
    acc = torch.zeros(2, device=dev)
    acc_n, t0 = 0, time.perf_counter()
    (run / "log.jsonl").unlink(missing_ok=True)
    # Dropout draws from the global RNG: seed it (and restore the caller's stream after) so that the
    # same seed gives the same run; without this, two runs of one seed differed (WS accuracy 0.94 vs 0.87).
    if dev.type == "cuda":
        torch.cuda.manual_seed_all(derive_seed(int(seed), "dropout"))
    with seeded(int(seed), "dropout"):
        net.train()
        for step in tqdm(range(1, steps + 1), desc=desc, unit="step", disable=None if progress else True, leave=False):
            k = (step - 1) % per_epoch
            if k == 0:
                order = torch.randperm(len(images), generator=gen).to(dev)
            idx = order[k * batch:(k + 1) * batch]
            task = net.task_loss(net(images[idx]), targets[idx])
            spatial, _ = net.spatial_loss()
            loss = task + spatial
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            acc += torch.stack([task.detach(), spatial.detach()]).float()
            acc_n += 1
            if step % log_every == 0 or step == steps:
                task_mean, spatial_mean = (acc / acc_n).tolist()
                record = {"step": step, "epoch": (step - 1) // per_epoch, "task_loss": task_mean,
                          "spatial_loss": spatial_mean, "steps_averaged": acc_n,
                          "time_s": round(time.perf_counter() - t0, 3)}
                if not np.isfinite(task_mean + spatial_mean):
                    raise FloatingPointError(f"{run}: the loss became non-finite by step {step}; lower the lr.")
                history.append(record)
                with open(run / "log.jsonl", "a") as fh:
                    fh.write(json.dumps(record) + "\n")
                acc, acc_n = torch.zeros(2, device=dev), 0
    seconds = time.perf_counter() - t0
    net.eval()
    result: dict[str, Any] = {"history": history, "seconds": round(seconds, 1), "recipe": rec}
    with torch.inference_mode():
        for name, part in (("train_accuracy", (images, labels)), ("heldout_accuracy", heldout)):
            if part is not None:
                out = torch.cat([net(b) for b in torch.split(part[0], 256)])
                result[name] = accuracy(torch.sigmoid(out) if codes is not None else out, part[1], codes)
    with atomic_path(run / "model.pt") as tmp:
        torch.save({k: v.cpu() for k, v in net.state_dict().items()}, tmp)
    config = {"trainer": {"loop": "cortexsim.study.train.train_in_memory", "steps": steps, "seed": seed,
                          "targets": "class labels" if codes is None else "soft codes (BCE)",
                          "augmentation": "none", "n_train": int(len(images)), **rec},
              "build": dict(build),
              "resolved": {"torch": torch.__version__, "device": str(dev), "epochs_seen": round(steps / per_epoch, 2),
                           **{k: v for k, v in result.items() if k.endswith("accuracy")}, "seconds": result["seconds"]}}
    with atomic_path(run / "config.json") as tmp:
        tmp.write_text(json.dumps(config, indent=2, default=_jsonable))
    return result


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
