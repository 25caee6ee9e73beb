"""Atomic writes of export outputs and the names of their companion files."""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

from ..errors import MapError
from ..io import atomic_path

#: Suffixes of the file kinds cortexsim writes, longest first (so ``.nii.gz`` wins over ``.gz``).
SUFFIXES: tuple[str, ...] = (".nii.gz", ".surf.gii", ".func.gii", ".label.gii", ".shape.gii", ".nii", ".gii", ".npz", ".npy", ".nc", ".h5")


def split_suffix(path: str | os.PathLike) -> tuple[Path, str]:
    """(path without its known suffix, suffix), e.g. ``a/b.nii.gz`` → (``a/b``, ``.nii.gz``)."""
    p = Path(path)
    name = p.name.lower()
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return p.with_name(p.name[: -len(suffix)]), suffix
    return p.with_suffix(""), p.suffix


def companion(path: str | os.PathLike, tail: str) -> Path:
    """A file next to ``path`` with its known suffix replaced by ``tail`` (``x.nii.gz`` → ``x.json``)."""
    stem, _ = split_suffix(path)
    return stem.with_name(stem.name + tail)


def require_suffix(path: str | os.PathLike, allowed: tuple[str, ...], what: str) -> str:
    """The suffix of ``path`` if it is one of ``allowed``, else a :class:`MapError` naming the fix."""
    _, suffix = split_suffix(path)
    if suffix.lower() not in allowed:
        raise MapError(f"{what} file {str(path)!r} must end with {' or '.join(allowed)}; got {suffix or 'no suffix'!r}.")
    return suffix.lower()


def write_bytes(path: str | os.PathLike, data: bytes, *, gz: bool = False) -> Path:
    """Write ``data`` (gzip-compressed, reproducibly, when ``gz``) to ``path`` atomically."""
    if gz:
        data = gzip.compress(data, compresslevel=6, mtime=0)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented strict JSON atomically."""
    return write_bytes(path, (json.dumps(obj, indent=2, allow_nan=False, default=str) + "\n").encode())


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode())
