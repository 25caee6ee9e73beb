"""Image datasets read from a user folder: CIFAR-10/100 and ImageNet-style image folders.

Nothing is ever downloaded. Layouts (as torchvision writes them)::

    <root>/cifar-10-batches-py/  data_batch_1..5, test_batch, batches.meta      (python pickles)
    <root>/cifar-10-batches-bin/ data_batch_1..5.bin, test_batch.bin, batches.meta.txt   (binary)
    <root>/cifar-100-python/     train, test, meta                                (python pickles)
    <root>/cifar-100-binary/     train.bin, test.bin, fine_label_names.txt, coarse_label_names.txt
    <root>/<class>/*.png|jpg     ImageNet-style folder (torchvision ImageFolder)

``root`` may also be the inner folder itself. The *binary* CIFAR version is
preferred when present: it needs no unpickling and is memory-mapped, so images
are read per batch. The python version is unpickled with a restricted
unpickler (numpy arrays and builtins only, no arbitrary code; no array or buffer
larger than the file could hold, so a crafted file cannot request terabytes) and
held as uint8 (150 MB for the CIFAR-10 training split).

Symbolic links in an image folder are followed, as torchvision's ``ImageFolder``
does, so a subset made of links into a larger dataset works; a link can therefore
make cortexsim read images outside ``root``. ``imagefolder(..., links="refuse")``
refuses class folders and images that resolve outside ``root``.

Coords: ``label`` (int class index), ``label_name``, ``macro_class`` (str,
``"none"`` outside every macro class), ``split``; CIFAR-100 adds
``coarse_label``. The Reset macro classes on CIFAR-100 fine labels
(Hannagan et al., Table S1) are ``RESET_MACRO_CLASSES``.
"""
from __future__ import annotations

import io
import os
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cortexsim.errors import StimulusError

from .base import DatasetNotFoundError, Normalize, StimulusSet
from .files import FileSet

__all__ = ["RESET_MACRO_CLASSES", "CifarSet", "cifar10", "cifar100", "imagefolder"]

RESET_MACRO_CLASSES: dict[str, tuple[int, ...]] = {
    "people": (2, 11, 35, 46, 98),  # baby, boy, girl, man, woman
    "houses": (17, 37, 76),  # castle, house, skyscraper
    "objects": (9, 10, 16, 20, 22),  # bottle, bowl, can, chair, clock
}

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


def _find(kind: int, root: Path) -> tuple[str, Path]:
    for fmt in ("bin", "py"):  # binary first: pickle-free and memory-mappable
        folder, train, test, meta = _LAYOUTS[kind][fmt]
        for cand in (root / folder, root):
            if all((cand / f).is_file() for f in (*train, *test, meta)):
                return fmt, cand
    raise _missing(kind, root)


def _text_lines(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]


class CifarSet(StimulusSet):
    """CIFAR-10/100 images (native 32×32 RGB) from a local copy; see the module docstring."""

    def __init__(
        self,
        root: str | Path,
        kind: int = 10,
        *,
        split: str = "test",
        macro_classes: Mapping[str, Sequence[int]] | None = None,
        image_size: int | Sequence[int] | None = None,
        channels: int | None = None,
        normalize: Normalize = None,
    ) -> None:
        super().__init__(image_size=image_size, channels=channels, normalize=normalize)
        if split not in ("train", "test", "all"):
            raise StimulusError(f"split must be 'train', 'test' or 'all', got {split!r}")
        root = Path(root).expanduser()
        if not root.exists():
            raise _missing(kind, root)
        fmt, folder = _find(kind, root)
        _, train, test, meta_file = _LAYOUTS[kind][fmt]
        files = {"train": train, "test": test, "all": train + test}[split]
        splits = {"train": ["train"] * len(train), "test": ["test"] * len(test), "all": ["train"] * len(train) + ["test"] * len(test)}[split]
        nlab = 1 if kind == 10 else 2
        self._parts: list[np.ndarray] = []  # per file: (n, 3, 32, 32) uint8 (memmap view for binary)
        fine, coarse, split_col = [], [], []
        for f, sp in zip(files, splits):
            if fmt == "bin":
                raw = np.memmap(folder / f, dtype=np.uint8, mode="r")
                if raw.size % (3072 + nlab):
                    raise StimulusError(f"{folder / f} is not a CIFAR-{kind} binary file (size {raw.size} bytes)")
                rec = raw.reshape(-1, 3072 + nlab)
                self._parts.append(rec[:, nlab:].reshape(-1, 3, 32, 32))
                fine.append(np.asarray(rec[:, nlab - 1], np.int64))
                coarse.append(np.asarray(rec[:, 0], np.int64) if kind == 100 else None)
            else:
                d = _unpickle(folder / f)
                key = "labels" if kind == 10 else "fine_labels"
                if "data" not in d or key not in d:
                    raise StimulusError(f"{folder / f} lacks the 'data'/'{key}' entries of a CIFAR-{kind} batch")
                self._parts.append(np.asarray(d["data"], np.uint8).reshape(-1, 3, 32, 32))
                fine.append(np.asarray(d[key], np.int64))
                coarse.append(np.asarray(d["coarse_labels"], np.int64) if kind == 100 else None)
            split_col += [sp] * len(fine[-1])
        if fmt == "bin":
            names = _text_lines(folder / meta_file)
        else:
            m = _unpickle(folder / meta_file)
            names = list(m["label_names" if kind == 10 else "fine_label_names"])
        labels = np.concatenate(fine)
        if labels.size and labels.max() >= len(names):
            raise StimulusError(f"label {labels.max()} but only {len(names)} class names in {folder / meta_file}")
        self._offsets = np.cumsum([0] + [len(p) for p in self._parts])
        macro = np.full(labels.size, "none", dtype=object)
        for mname, ids in (macro_classes or {}).items():
            macro[np.isin(labels, list(ids))] = mname
        meta = {
            "stimulus_id": [f"cifar{kind}-{s}-{i:05d}" for s, i in zip(split_col, _within_split(split_col))],
            "label": labels,
            "label_name": np.asarray(names, dtype=object)[labels].astype(str),
            "macro_class": macro.astype(str),
            "split": split_col,
        }
        if kind == 100:
            meta["coarse_label"] = np.concatenate(coarse)
        self._set_metadata(pd.DataFrame(meta))

    def _native_shape(self) -> tuple[int, int, int]:
        return (3, 32, 32)

    def _render(self, idx: np.ndarray) -> torch.Tensor:
        which = np.searchsorted(self._offsets, idx, side="right") - 1
        out = np.empty((len(idx), 3, 32, 32), np.uint8)
        for k in np.unique(which):  # at most 6 files
            sel = np.flatnonzero(which == k)
            out[sel] = self._parts[k][idx[sel] - self._offsets[k]]
        return torch.from_numpy(out).float().div_(255.0)


def _within_split(split_col: list[str]) -> np.ndarray:
    s = pd.Series(split_col)
    return s.groupby(s).cumcount().to_numpy()


def cifar10(root: str | Path, *, split: str = "test", **kwargs) -> CifarSet:
    """CIFAR-10 from ``root`` (no download); ``macro_class`` is "none" unless ``macro_classes`` given."""
    return CifarSet(root, 10, split=split, **kwargs)


def cifar100(
    root: str | Path, *, split: str = "test", macro_classes: Mapping[str, Sequence[int]] | None = RESET_MACRO_CLASSES, **kwargs
) -> CifarSet:
    """CIFAR-100 from ``root`` (no download) with the Reset macro classes people / houses / objects."""
    return CifarSet(root, 100, split=split, macro_classes=macro_classes, **kwargs)


def imagefolder(
    root: str | Path,
    *,
    macro_classes: Mapping[str, Sequence[int | str]] | None = None,
    image_size: int | Sequence[int] = 224,
    channels: int = 3,
    normalize: Normalize = None,
    links: str = "follow",
) -> FileSet:
    """ImageNet-style folder ``root/<class>/<image>`` read lazily (class order as torchvision ImageFolder).

    ``macro_classes`` maps a macro-class name to class indices or class-folder names.
    ``links``: ``"follow"`` symbolic links wherever they point (torchvision's behaviour; a
    subset made of links into a larger dataset works), or ``"refuse"`` class folders and
    images that resolve outside ``root`` (a StimulusError naming the first).
    """
    from torchvision.datasets import ImageFolder

    if links not in ("follow", "refuse"):
        raise StimulusError(f"links must be 'follow' or 'refuse'; got {links!r}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError(f"image folder {root} does not exist; expected {root}/<class name>/<image>.png|jpg")
    try:
        ds = ImageFolder(str(root), loader=lambda p: p)  # only scans; images are read per batch later
    except FileNotFoundError as e:
        raise DatasetNotFoundError(
            f"no images found under {root} ({e}); expected {root}/<class name>/<image>.png|jpg, one folder per class"
        ) from None
    paths = [p for p, _ in ds.samples]
    if links == "refuse":
        _refuse_outside(root, [str(root / c) for c in ds.classes] + paths)
    labels = np.asarray([t for _, t in ds.samples], np.int64)
    names = np.asarray(ds.classes, dtype=object)[labels].astype(str)
    macro = np.full(labels.size, "none", dtype=object)
    for mname, ids in (macro_classes or {}).items():
        ids = list(ids)
        macro[np.isin(labels, [i for i in ids if not isinstance(i, str)]) | np.isin(names, [i for i in ids if isinstance(i, str)])] = mname
    meta = pd.DataFrame({
        "stimulus_id": [str(Path(p).relative_to(root)) for p in paths],
        "label": labels, "label_name": names, "macro_class": macro.astype(str), "path": paths,
    })
    return FileSet(meta, image_size=image_size, channels=channels, normalize=normalize)


def _refuse_outside(root: Path, paths: Sequence[str]) -> None:
    """StimulusError naming the first of ``paths`` whose real location is outside ``root``."""
    base = os.path.realpath(root)
    real = [os.path.realpath(p) for p in paths]  # one stat per path: file-system work, not arithmetic
    outside = [(p, r) for p, r in zip(paths, real) if os.path.commonpath([base, r]) != base]
    if outside:
        p, r = outside[0]
        raise StimulusError(f"{p} is a link to {r}, outside the image folder {base} ({len(outside)} such paths); "
                            f"copy the images in, or pass links='follow' to read them where they are")
