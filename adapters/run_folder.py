"""The run folder of a training run: ``config.json``, ``log.jsonl`` / ``metrics.csv``, checkpoints, ``model.pt``.

::

    RUN_DIR/config.json        {"trainer": TrainConfig options, "build": build_net's input, "resolved": …}
    RUN_DIR/log.jsonl          one JSON record per log interval (append; re-made from a checkpoint on resume)
    RUN_DIR/metrics.csv        the same records as CSV
    RUN_DIR/checkpoints/       step_*.pt, last.pt (:mod:`cortexsim.adapters.checkpoint`: atomic, keep-last-k)
    RUN_DIR/model.pt           the final state_dict
    RUN_DIR/curves.png         loss curves (:func:`cortexsim.plotting.training.plot_curves`)

:class:`RunFolder` writes them (every whole-file write atomic); :func:`load_trained`,
:func:`read_log` and :func:`build_net` read them back.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import torch

from cortexsim.io import atomic_path

from .base import AdapterError, TopographicNet, get_method
from .checkpoint import load_latest_checkpoint, save_checkpoint


class RunFolder:
    """Writes one run's files under ``path`` (created on first write)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def write_config(self, trainer: dict[str, Any], build: dict[str, Any], resolved: dict[str, Any]) -> None:
        """``config.json`` (atomic): the options as given, the build arguments, what they resolved to."""
        self.path.mkdir(parents=True, exist_ok=True)
        cfg = {"trainer": trainer, "build": build, "resolved": resolved}
        with atomic_path(self.path / "config.json") as tmp:
            tmp.write_text(json.dumps(cfg, indent=2, default=str))

    def read_config(self) -> dict[str, Any]:
        return _read_config(self.path)

    def append_log(self, rec: dict[str, Any]) -> None:
        """Append one record to ``log.jsonl`` and ``metrics.csv`` (header on the first)."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / "log.jsonl", "a") as fh:
            fh.write(json.dumps(rec) + "\n")
        csv_path = self.path / "metrics.csv"
        new = not csv_path.is_file() or csv_path.stat().st_size == 0
        with open(csv_path, "a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rec))
            if new:
                w.writeheader()
            w.writerow(rec)

    def rewrite_logs(self, records: list[dict[str, Any]]) -> None:
        """Replace both logs by ``records`` (atomic): after a resume, the records up to the checkpoint."""
        with atomic_path(self.path / "log.jsonl") as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
        with atomic_path(self.path / "metrics.csv") as tmp:
            _write_csv(tmp, records)

    def clear_logs(self) -> None:
        for name in ("log.jsonl", "metrics.csv"):
            (self.path / name).unlink(missing_ok=True)

    def read_log(self) -> list[dict[str, Any]]:
        return read_log(self.path)

    def save_checkpoint(self, state: dict[str, Any], step: int, keep: int) -> Path:
        return save_checkpoint(self.path, state, step, keep=keep)

    def latest_checkpoint(self) -> tuple[Path, dict[str, Any]] | None:
        """``(path, state)`` of the newest checkpoint that verifies, None without one."""
        return load_latest_checkpoint(self.path)

    def write_model(self, state_dict: dict[str, Any]) -> None:
        with atomic_path(self.path / "model.pt") as tmp:
            torch.save(state_dict, tmp)


def build_net(build: dict[str, Any]) -> TopographicNet:
    """Build a method's network from ``config.json["build"]``."""
    kw = dict(build.get("kw") or {})
    if build.get("lam") is not None:
        kw["lam"] = build["lam"]
    return get_method(build["method"]).build(build["arch"], build["num_classes"], layout=build.get("layout"),
                                             layers=build.get("layers"), seed=build.get("seed", 0),
                                             image_size=build.get("image_size", 32), **kw)


def load_trained(run_dir: str | os.PathLike, map_location: str | torch.device = "cpu") -> TopographicNet:
    """Rebuild the trained network of ``run_dir`` from ``config.json`` and ``model.pt`` (``weights_only=True``).

    Returns the net in eval mode, on ``map_location``.
    """
    run = Path(run_dir)
    if not (run / "config.json").is_file() or not (run / "model.pt").is_file():
        raise AdapterError(f"{str(run)!r} needs config.json and model.pt; they are written when training finishes "
                           f"(Trainer(out=RUN_DIR).fit() or `cortexsim train --out RUN_DIR`).")
    build = _read_config(run)["build"]
    try:
        net = build_net(build)
    except (KeyError, TypeError) as exc:
        raise AdapterError(f"{str(run / 'config.json')!r} has an unusable 'build' entry ({exc}); "
                           f"re-train the run.") from None
    net.load_state_dict(torch.load(run / "model.pt", map_location=map_location, weights_only=True))
    return net.to(map_location).eval()


def _read_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """``RUN_DIR/config.json`` with its ``trainer`` and ``build`` entries; AdapterError if unreadable."""
    path = Path(run_dir) / "config.json"
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdapterError(f"cannot read {str(path)!r} ({type(exc).__name__}: {exc}); the run's config is damaged. "
                           f"Restore it or start a new run folder.") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("trainer"), dict) or not isinstance(cfg.get("build"), dict):
        raise AdapterError(f"{str(path)!r} is not a cortexsim run config (needs 'trainer' and 'build' objects); "
                           f"restore it or start a new run folder.")
    return cfg


def read_log(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Records of ``RUN_DIR/log.jsonl`` (a torn last line from a crash is ignored)."""
    path = Path(run_dir) / "log.jsonl"
    if not path.is_file():
        return []
    recs = []
    lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    for i, line in enumerate(lines):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            rec = None
        if not isinstance(rec, dict) or not isinstance(rec.get("step"), int):
            if i < len(lines) - 1:  # a torn last line is a crash; anything earlier is damage: say so
                import warnings

                warnings.warn(f"{str(path)!r} is damaged at line {i + 1}; the {len(lines) - i} records from there "
                              f"on are dropped (the log is re-made from the checkpoint's step).", RuntimeWarning,
                              stacklevel=2)
            break
        recs.append(rec)
    return recs


def _write_csv(path: Path, records: list[dict[str, Any]]) -> None:
    fields = list(dict.fromkeys(k for r in records for k in r))
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(records)
