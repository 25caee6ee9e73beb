"""Image datasets read from a user folder: CIFAR-10/100 and ImageNet-style image folders.

Nothing is ever downloaded. Layouts (as torchvision writes them)::

    <root>/cifar-10-batches-py/  data_batch_1..5, test_batch, batches.meta      (python pickles)
    <root>/cifar-10-batches-bin/ data_batch_1..5.bin, test_batch.bin, batches.meta.txt   (binary)
    <root>/cifar-100-python/     train, test, meta                                (python pickles)
    <root>/cifar-100-binary/     train.bin, test.bin, fine_label_names.txt, coarse_label_names.txt
    <root>/<class>/*.png|jpg     ImageNet-style folder (torchvision ImageFolder)

``root`` may also be the inner folder itself. CIFAR files are read by
:mod:`cortexsim.stimuli.cifar` (the one CIFAR reader, shared with the trainer):
the *binary* version is preferred when present (no unpickling, memory-mapped);
the python version goes through a restricted unpickler and is held as uint8
(150 MB for the CIFAR-10 training split).

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

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cortexsim.errors import StimulusError

from .base import DatasetNotFoundError, Normalize, StimulusSet
from .cifar import _unpickle, read_cifar  # noqa: F401 - _unpickle: kept importable here for older callers
from .files import FileSet

__all__ = ["RESET_MACRO_CLASSES", "CifarSet", "cifar10", "cifar100", "imagefolder"]

RESET_MACRO_CLASSES: dict[str, tuple[int, ...]] = {
    "people": (2, 11, 35, 46, 98),  # baby, boy, girl, man, woman
    "houses": (17, 37, 76),  # castle, house, skyscraper
    "objects": (9, 10, 16, 20, 22),  # bottle, bowl, can, chair, clock
}


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
        data = read_cifar(root, kind, split=split)
        self._parts = data.parts  # per file: (n, 3, 32, 32) uint8 (memmap view for binary)
        labels, split_col = data.labels, data.split
        names = data.names
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
        if data.coarse is not None:
            meta["coarse_label"] = data.coarse
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
