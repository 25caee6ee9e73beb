"""The one CIFAR-10/100 reader: locate a local copy, read its images and labels.

Used by the stimulus sets (:func:`cortexsim.stimuli.cifar10` / ``cifar100``)
and by the trainer's data loading (``cortexsim train --data ROOT``). Nothing is
downloaded. Layouts (as torchvision and the CIFAR archives write them)::

    <root>/cifar-10-batches-py/  data_batch_1..5, test_batch, batches.meta      (python pickles)
    <root>/cifar-10-batches-bin/ data_batch_1..5.bin, test_batch.bin, batches.meta.txt   (binary)
    <root>/cifar-100-python/     train, test, meta                                (python pickles)
    <root>/cifar-100-binary/     train.bin, test.bin, fine_label_names.txt, coarse_label_names.txt

``root`` may also be the inner folder itself. One format rule: the *binary*
version is preferred when both are present (no unpickling; memory-mapped, so
images are read per batch). The python version is unpickled with a restricted
unpickler (numpy arrays and builtins only, no arbitrary code; no array or buffer
larger than the file could hold, so a crafted file cannot request terabytes).
"""
from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cortexsim.errors import StimulusError

from .base import DatasetNotFoundError

__all__ = ["CifarArrays", "locate_cifar", "read_cifar"]

_LAYOUTS = {
    10: {
        "py": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "batches.meta"),
        "bin": ("cifar-10-batches-bin", [f"data_batch_{i}.bin" for i in range(1, 6)], ["test_batch.bin"], "batches.meta.txt"),
    },
    100: {
        "py": ("cifar-100-python", ["train"], ["test"], "meta"),
        "bin": ("cifar-100-binary", ["train.bin"], ["test.bin"], "fine_label_names.txt"),
    },
}
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"), ("builtins", "bytearray"),
}


def _nbytes(shape, dtype) -> int:
    """Bytes an array of ``shape`` and ``dtype`` needs (-1 when they are not a valid shape/dtype)."""
    try:
        dims = [int(shape)] if np.ndim(shape) == 0 else [int(n) for n in shape]
        return int(np.prod(dims, dtype=object)) * np.dtype(dtype).itemsize if min(dims, default=0) >= 0 else -1
    except (TypeError, ValueError):
        return -1


class _SafeUnpickler(pickle.Unpickler):
    """Unpickles CIFAR batches (dicts of lists/numpy arrays) and refuses anything else.

    ``limit`` caps, in bytes, every array or bytearray the pickle asks to allocate: a CIFAR
    batch holds its pixels in the file, so nothing in it needs more than the file's size
    (a crafted ``bytearray(2**42)`` would otherwise be a MemoryError, or swap the machine).
    """

    def __init__(self, file: io.BytesIO, *, limit: int, name: str = "file", **kwargs) -> None:
        super().__init__(file, **kwargs)
        self.limit, self.name = int(limit), name

        def check(n: int, what: str) -> None:
            if n > self.limit:
                raise StimulusError(f"{self.name}: the pickle asks for {what} of {n:,} bytes, more than the "
                                    f"file ({self.limit:,} bytes with headroom) can hold; not a CIFAR batch file")

        def capped_bytearray(*args):
            if args and isinstance(args[0], int):
                check(args[0], "a bytearray")
            return bytearray(*args)

        def capped_ndarray(shape, dtype=float, *args, **kw):
            check(_nbytes(shape, dtype), "an array")
            return np.ndarray(shape, dtype, *args, **kw)

        def capped_reconstruct(subtype, shape, dtype):
            check(_nbytes(shape, dtype), "an array")
            return self._reconstruct(np.ndarray if subtype is capped_ndarray else subtype, shape, dtype)

        self._capped = {"bytearray": capped_bytearray, "ndarray": capped_ndarray, "_reconstruct": capped_reconstruct}

    def find_class(self, module: str, name: str):
        if (module, name) not in _SAFE_GLOBALS:
            raise StimulusError(f"refusing to unpickle {module}.{name}: not a CIFAR batch file")
        real = super().find_class(module, name)
        if name == "_reconstruct":
            self._reconstruct = real
        return self._capped.get(name, real)


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        raw = f.read()
    try:
        d = _SafeUnpickler(io.BytesIO(raw), limit=2 * len(raw) + 2**20, name=str(path), encoding="latin1").load()
    except StimulusError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, OverflowError, UnicodeError) as exc:
        raise StimulusError(f"{path} is not a readable CIFAR batch ({type(exc).__name__}: {str(exc)[:200]}); "
                            f"replace it with the file from the original archive") from None
    if not isinstance(d, dict):
        raise StimulusError(f"{path} is not a CIFAR batch (expected a pickled dict)")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}


def _missing(kind: int, root: Path) -> DatasetNotFoundError:
    py, binv = _LAYOUTS[kind]["py"], _LAYOUTS[kind]["bin"]
    return DatasetNotFoundError(
        f"CIFAR-{kind} not found under {root}. Nothing is downloaded: put the extracted archive there, i.e. "
        f"{root / py[0]}/{{{', '.join(py[1] + py[2] + [py[3]])}}} (python version, as torchvision's "
        f"CIFAR{kind}(root, download=True) leaves it) or {root / binv[0]}/{{{', '.join(binv[1] + binv[2])}, ...}} "
        "(binary version)"
    )


_SPLITS = ("train", "test", "all")


def _split_files(kind: int, fmt: str, split: str) -> tuple[list[str], list[str]]:
    """Files of ``split`` and the split name of each."""
    _, train, test, _ = _LAYOUTS[kind][fmt]
    files = {"train": train, "test": test, "all": train + test}[split]
    return files, ["train"] * len(files) if split == "train" else (["test"] * len(files) if split == "test" else
                                                                     ["train"] * len(train) + ["test"] * len(test))


def locate_cifar(root: str | Path, kind: int | None = None, *, split: str = "all",
                 names: bool = True) -> tuple[int, str, Path]:
    """Where the CIFAR copy under ``root`` is: ``(kind, format, folder)``.

    Parameters
    ----------
    root : path
        The folder holding ``cifar-10-batches-py/`` etc., or that inner folder.
    kind : {10, 100, None}
        None: CIFAR-10 if present, else CIFAR-100.
    split : {"train", "test", "all"}
        The files that must be there (with ``names``, also the class-name file).
    names : bool
        Require the class-name (meta) file.

    Returns
    -------
    (int, {"bin", "py"}, Path)

    Raises
    ------
    DatasetNotFoundError
        Nothing there (the message says which files to put where), or a CIFAR
        folder that lacks files (named).
    """
    if split not in _SPLITS:
        raise StimulusError(f"split must be 'train', 'test' or 'all', got {split!r}")
    if kind not in (None, 10, 100):
        raise StimulusError(f"kind must be 10 or 100 (CIFAR-10 / CIFAR-100); got {kind!r}")
    root = Path(root).expanduser()
    for k in (10, 100) if kind is None else (kind,):
        for fmt in ("bin", "py"):  # binary first: pickle-free and memory-mappable
            sub, *_, meta = _LAYOUTS[k][fmt]
            need = _split_files(k, fmt, split)[0] + ([meta] if names else [])
            for cand in (root / sub, root):
                if all((cand / f).is_file() for f in need):
                    return k, fmt, cand
            folder = root if root.name == sub else root / sub
            if folder.is_dir():  # a CIFAR folder, but not all of it
                absent = [f for f in need if not (folder / f).is_file()]
                raise DatasetNotFoundError(f"{folder} is incomplete ({', '.join(absent)} missing). "
                                           f"{_missing(k, root)}")
    raise _missing(kind or 10, root)


@dataclass
class CifarArrays:
    """A CIFAR split as arrays (pixels stay memory-mapped for the binary version).

    Attributes
    ----------
    kind : 10 or 100
    fmt : {"bin", "py"}
    folder : Path
    parts : list of uint8 arrays (n_i, 3, 32, 32)
        One per file (R, G, B planes of 32 × 32), in file order.
    labels : int64 (N,)
        Class (CIFAR-100: fine class) of every image.
    coarse : int64 (N,) or None
        CIFAR-100's coarse class.
    split : list of str (N,)
        "train" / "test" per image.
    names : list of str or None
        Class names (None when read with ``names=False``).
    """

    kind: int
    fmt: str
    folder: Path
    parts: list[np.ndarray]
    labels: np.ndarray
    coarse: np.ndarray | None
    split: list[str]
    names: list[str] | None

    def images(self) -> np.ndarray:
        """All images, (N, 3, 32, 32) uint8, in memory."""
        return np.concatenate(self.parts) if self.parts else np.empty((0, 3, 32, 32), np.uint8)


def read_cifar(root: str | Path, kind: int | None = None, *, split: str = "test", names: bool = True) -> CifarArrays:
    """Read CIFAR-10/100 ``split`` from ``root`` (see :func:`locate_cifar` for ``kind`` / ``names``).

    Raises
    ------
    DatasetNotFoundError
        No (complete) copy under ``root``.
    StimulusError
        A file that is not a CIFAR batch (wrong size, hostile or broken pickle, labels beyond the class names).
    """
    kind, fmt, folder = locate_cifar(root, kind, split=split, names=names)
    files, splits = _split_files(kind, fmt, split)
    nlab = 1 if kind == 10 else 2
    parts: list[np.ndarray] = []
    fine, coarse, split_col = [], [], []
    for f, sp in zip(files, splits):
        if fmt == "bin":
            raw = np.memmap(folder / f, dtype=np.uint8, mode="r")
            if raw.size % (3072 + nlab):
                raise StimulusError(f"{folder / f} is not a CIFAR-{kind} binary file (size {raw.size} bytes)")
            rec = raw.reshape(-1, 3072 + nlab)
            parts.append(rec[:, nlab:].reshape(-1, 3, 32, 32))
            fine.append(np.asarray(rec[:, nlab - 1], np.int64))  # binary records: label byte(s), then pixels
            coarse.append(np.asarray(rec[:, 0], np.int64))
        else:
            d = _unpickle(folder / f)
            key = "labels" if kind == 10 else "fine_labels"
            if "data" not in d or key not in d:
                raise StimulusError(f"{folder / f} lacks the 'data'/'{key}' entries of a CIFAR-{kind} batch")
            parts.append(np.asarray(d["data"], np.uint8).reshape(-1, 3, 32, 32))
            fine.append(np.asarray(d[key], np.int64))
            coarse.append(np.asarray(d.get("coarse_labels", []), np.int64))
        split_col += [sp] * len(fine[-1])
    labels = np.concatenate(fine)
    class_names = None
    if names:
        meta_file = folder / _LAYOUTS[kind][fmt][3]
        if fmt == "bin":
            class_names = [ln.strip() for ln in meta_file.read_text().splitlines() if ln.strip()]
        else:
            class_names = [str(n) for n in _unpickle(meta_file)["label_names" if kind == 10 else "fine_label_names"]]
        if labels.size and labels.max() >= len(class_names):
            raise StimulusError(f"label {labels.max()} but only {len(class_names)} class names in {meta_file}")
    elif labels.size and (labels.min() < 0 or labels.max() >= kind):
        raise StimulusError(f"labels must be in 0..{kind - 1} for CIFAR-{kind}; {folder} has {labels.max()}")
    return CifarArrays(kind, fmt, folder, parts, labels, np.concatenate(coarse) if kind == 100 else None,
                       split_col, class_names)
