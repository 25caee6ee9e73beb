"""Training checkpoints: atomic writes, keep-last-k, ``weights_only=True`` loading.

A checkpoint is a plain dict of tensors and JSON-able values (model, optimizer,
scheduler state dicts, step / epoch / batch position, RNG states, config) so it
loads with ``torch.load(path, weights_only=True)`` — no pickled code runs on load.
RNG states are therefore stored as tensors and ints, not as the objects
``numpy`` / ``random`` return.

Layout in a run folder::

    RUN_DIR/checkpoints/step_00000100.pt          # the last ``keep`` of these
    RUN_DIR/checkpoints/step_00000100.pt.sha256   # its SHA-256 (``sha256sum -c`` format)
    RUN_DIR/checkpoints/last.pt (+ .sha256)       # hard link to the newest (one copy on disk)

torch's zip reader does not check tensor bytes, so a damaged checkpoint would load with
different weights: every load verifies the SHA-256 written with the file, and
:func:`load_latest_checkpoint` falls back to the newest step file that verifies (with a
warning) when ``last.pt`` does not.
"""
from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import warnings
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


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(2**20), b""):
            h.update(block)
    return h.hexdigest()


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _write_digest(path: Path, digest: str) -> None:
    with atomic_path(_digest_path(path)) as tmp:
        tmp.write_text(f"{digest}  {path.name}\n")


def save_checkpoint(run_dir: str | os.PathLike, state: dict[str, Any], step: int, *, keep: int = 3) -> Path:
    """Write ``state`` as ``step_<step>.pt`` (+ its SHA-256) and point ``last.pt`` at it; keep the newest ``keep``.

    ``last.pt`` is a hard link to the step file (a copy where the file system has no links),
    so the newest checkpoint is on disk once. Every file is replaced atomically: a crash at
    any point leaves a loadable checkpoint (the previous or the new one).
    """
    folder = checkpoint_dir(run_dir)
    path = folder / f"step_{int(step):08d}.pt"
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
        digest = file_sha256(tmp)
    _write_digest(path, digest)
    last = folder / "last.pt"
    with atomic_path(last) as tmp:
        tmp.unlink()
        try:
            os.link(path, tmp)
        except OSError:  # no hard links here (some network / FAT file systems)
            shutil.copyfile(path, tmp)
    _write_digest(last, digest)
    for old in list_checkpoints(run_dir)[: -max(1, int(keep))]:
        old.unlink(missing_ok=True)
        _digest_path(old).unlink(missing_ok=True)
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
    """Load a checkpoint with ``weights_only=True`` after checking its SHA-256 (when one was written).

    Raises
    ------
    AdapterError
        Missing, damaged (SHA-256 mismatch), truncated or foreign file.
    """
    path = Path(path)
    if not path.is_file():
        raise AdapterError(f"checkpoint {str(path)!r} does not exist; train with out=RUN_DIR and checkpoint_every=N first.")
    sidecar = _digest_path(path)
    if sidecar.is_file():
        try:
            expected = sidecar.read_text().split()[0].lower()
        except (OSError, UnicodeDecodeError, IndexError) as exc:
            raise AdapterError(f"the SHA-256 file {str(sidecar)!r} of checkpoint {path.name} is unreadable ({exc}).") from exc
        actual = file_sha256(path)
        if actual != expected:
            raise AdapterError(
                f"checkpoint {str(path)!r} fails its SHA-256 check (expected {expected[:12]}…, found {actual[:12]}…): "
                f"it is damaged, or its write was interrupted. Its weights would be wrong; use an older checkpoint."
            )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated or foreign file
        raise AdapterError(f"could not load checkpoint {str(path)!r}: {exc}") from exc
    if not isinstance(state, dict) or "step" not in state:
        raise AdapterError(f"{str(path)!r} is not a cortexsim training checkpoint (no 'step' entry).")
    return state


def load_latest_checkpoint(run_dir: str | os.PathLike,
                           map_location: str | torch.device = "cpu") -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint of a run that loads and verifies: ``last.pt``, else the newest good ``step_*.pt``.

    Returns ``(path, state)``, or None when the run has no checkpoint. Skipping a damaged
    file emits a ``RuntimeWarning`` saying which one and where training resumes from.

    Raises
    ------
    AdapterError
        Checkpoints exist but none loads.
    """
    last = checkpoint_dir(run_dir) / "last.pt"
    candidates = ([last] if last.is_file() else []) + list_checkpoints(run_dir)[::-1]
    if not candidates:
        return None
    failed: list[str] = []
    for path in candidates:
        try:
            state = load_checkpoint(path, map_location)
        except AdapterError as exc:
            failed.append(f"{path.name} ({exc})")
            continue
        if failed:
            warnings.warn(f"skipped damaged checkpoint(s) {'; '.join(failed)}; resuming from {path.name} "
                          f"(step {state['step']}).", RuntimeWarning, stacklevel=2)
        return path, state
    raise AdapterError(f"no checkpoint of {str(run_dir)!r} loads: {'; '.join(failed)}. Start a new run folder.")
