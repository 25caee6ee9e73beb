"""Training checkpoints: atomic writes, keep-last-k, ``weights_only=True`` loading.

A checkpoint is a plain dict of tensors and JSON-able values (model, optimizer,
scheduler state dicts, step / epoch / batch position, RNG states, config) so it
loads with ``torch.load(path, weights_only=True)`` — no pickled code runs on load.
RNG states are therefore stored as tensors and ints, not as the objects
``numpy`` / ``random`` return.

Layout in a run folder::

    RUN_DIR/checkpoints/step_00000100.pt   # the last ``keep`` of these
    RUN_DIR/checkpoints/last.pt            # copy of the newest
"""
from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cortexsim.io import atomic_path

from .base import AdapterError

_STEP_FILE = re.compile(r"^step_(\d+)\.pt$")


def rng_state() -> dict[str, Any]:
    """RNG states of torch (CPU and every CUDA device), numpy and python ``random`` as tensors/ints."""
    keys, pos, has_gauss, cached = np.random.get_state(legacy=True)[1:]
    version, py_state, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        "numpy_pos": int(pos),
        "numpy_has_gauss": int(has_gauss),
        "numpy_cached_gaussian": float(cached),
        "python_version": int(version),
        "python_state": torch.tensor(py_state, dtype=torch.int64),
        "python_gauss_next": None if gauss_next is None else float(gauss_next),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned (CUDA states only if the device count matches)."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"],
                         state["numpy_has_gauss"], state["numpy_cached_gaussian"]))
    random.setstate((state["python_version"], tuple(int(v) for v in state["python_state"].tolist()),
                     state["python_gauss_next"]))
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "checkpoints"


def save_checkpoint(run_dir: str | os.PathLike, state: dict[str, Any], step: int, *, keep: int = 3) -> Path:
    """Write ``state`` as ``step_<step>.pt`` and ``last.pt`` atomically; delete all but the newest ``keep``.

    A crash at any point leaves the previous ``last.pt`` (or the new one) whole.
    """
    folder = checkpoint_dir(run_dir)
    path = folder / f"step_{int(step):08d}.pt"
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    with atomic_path(folder / "last.pt") as tmp:
        shutil.copyfile(path, tmp)
    for old in list_checkpoints(run_dir)[: -max(1, int(keep))]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """``step_*.pt`` files of a run, oldest first."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP_FILE.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """``last.pt`` if present, else the newest ``step_*.pt``, else None."""
    last = checkpoint_dir(run_dir) / "last.pt"
    if last.is_file():
        return last
    steps = list_checkpoints(run_dir)
    return steps[-1] if steps else None


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; a missing/corrupt file raises AdapterError."""
    path = Path(path)
    if not path.is_file():
        raise AdapterError(f"checkpoint {str(path)!r} does not exist; train with out=RUN_DIR and checkpoint_every=N first.")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated or foreign file
        raise AdapterError(f"could not load checkpoint {str(path)!r}: {exc}") from exc
