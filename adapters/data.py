"""Training data for the trainer: CIFAR folders, image folders and offline sets.

Nothing here downloads. ``load_dataset(data)`` accepts

* ``"digits"`` — scikit-learn's 8×8 handwritten digits upsampled to ``image_size``
  (1,797 images, 10 classes), built in memory;
* ``"lfw"`` — scikit-image's ``lfw_subset`` (100 faces vs 100 non-faces, 2 classes);
* a folder holding CIFAR-10/100 as torchvision lays it out
  (``ROOT/cifar-10-batches-py/data_batch_1`` …, ``ROOT/cifar-100-python/train``) or
  the binary version (``ROOT/cifar-10-batches-bin/data_batch_1.bin`` …);
* an ImageNet-style folder (``ROOT[/train]/<class>/<image>``), read with
  :class:`torchvision.datasets.ImageFolder`.

Images are stored/decoded as uint8 (C, H, W) and become float32 in [0, 1]
after augmentation — the same range as :mod:`cortexsim.stimuli`, so a trained
model records stimuli without extra normalisation.

Augmentations are reproducible: the random draws of sample ``i`` in epoch ``e``
come from a seed derived from ``(seed, epoch, i)``, not from the global RNG or
the worker process, so a resumed run sees exactly the images an uninterrupted
run would have seen, with any ``num_workers``.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from cortexsim.errors import AdapterError, DatasetNotFoundError

#: Names of the in-memory sets that ship with installed packages.
OFFLINE_SETS = ("digits", "lfw")

_CIFAR_HELP = (
    "put CIFAR-10 as torchvision lays it out: ROOT/cifar-10-batches-py/data_batch_1 … data_batch_5, test_batch "
    "(or the binary version ROOT/cifar-10-batches-bin/data_batch_1.bin …; CIFAR-100: ROOT/cifar-100-python/train, "
    "test), an ImageNet-style folder ROOT/train/<class>/<image>.jpg, or use an offline set "
    f"({', '.join(OFFLINE_SETS)}), and pass that ROOT as data"
)


@dataclass
class ImageData:
    """A training set before augmentation.

    Attributes
    ----------
    base : Dataset
        Item ``i`` -> (image, label); image a uint8 tensor (C, H, W) or a PIL image.
    num_classes : int
    image_size : int
        Side length (pixels) of the images the model sees after augmentation.
    name : str
        ``"digits"``, ``"cifar10"``, ``"imagefolder"`` …
    in_memory : bool
        True when ``base`` holds uint8 tensors of side ``image_size`` (crop-and-flip
        augmentation); False for decoded-on-the-fly folders (random resized crops).
    """

    base: Dataset
    num_classes: int
    image_size: int
    name: str
    in_memory: bool = True

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]


class TensorImages(Dataset):
    """uint8 images (N, C, H, W) and int64 labels (N,) in memory."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise AdapterError(f"images must be uint8 (N, C, H, W); got {images.dtype} {tuple(images.shape)}.")
        self.images = images
        self.labels = labels.to(torch.int64)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]


def _to_uint8_rgb(x: np.ndarray, size: int) -> torch.Tensor:
    """Grey images (N, h, w) in [0, 1] -> uint8 RGB (N, 3, size, size), bilinear resize."""
    t = torch.from_numpy(np.asarray(x, dtype=np.float32))[:, None]
    t = torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
    return (t.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()


def digits(image_size: int = 32) -> ImageData:
    """scikit-learn's handwritten digits (1,797 × 8×8, values 0–16) as RGB ``image_size`` images."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = _to_uint8_rgb(d.images / 16.0, image_size)
    return ImageData(TensorImages(images, torch.from_numpy(d.target)), 10, image_size, "digits")


def lfw(image_size: int = 32) -> ImageData:
    """scikit-image's ``lfw_subset``: 100 faces (label 1) then 100 non-faces (label 0), 25×25 grey."""
    from skimage.data import lfw_subset

    x = lfw_subset()
    labels = torch.cat([torch.ones(100, dtype=torch.int64), torch.zeros(len(x) - 100, dtype=torch.int64)])
    return ImageData(TensorImages(_to_uint8_rgb(x, image_size), labels), 2, image_size, "lfw")


def _cifar_python(folder: Path, files: list[str], label_key: str) -> tuple[np.ndarray, np.ndarray]:
    # Same pickles torchvision reads; read directly so no md5 check / PIL round trip is needed,
    # through the stimuli package's restricted unpickler: a data folder is untrusted input.
    from cortexsim.stimuli.datasets import _unpickle

    data, labels = [], []
    for name in files:
        if not (folder / name).exists():
            raise FileNotFoundError(2, "missing", str(folder / name))
        entry = _unpickle(folder / name)
        data.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(entry[label_key], dtype=np.int64))
    return np.concatenate(data), np.concatenate(labels)


def _cifar_binary(folder: Path, files: list[str], n_label_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    # Binary records: label byte(s) then 3,072 pixel bytes (R, G, B planes); fine label is the last byte.
    rec = np.concatenate([np.fromfile(folder / f, dtype=np.uint8) for f in files])
    rec = rec.reshape(-1, n_label_bytes + 3072)
    return rec[:, n_label_bytes:].reshape(-1, 3, 32, 32), rec[:, n_label_bytes - 1].astype(np.int64)


def _find_cifar(root: Path, train: bool) -> ImageData | None:
    variants: list[tuple[str, str, int, Callable[[Path], tuple[np.ndarray, np.ndarray]]]] = [
        ("cifar-10-batches-py", "cifar10", 10,
         lambda f: _cifar_python(f, [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"], "labels")),
        ("cifar-100-python", "cifar100", 100,
         lambda f: _cifar_python(f, ["train" if train else "test"], "fine_labels")),
        ("cifar-10-batches-bin", "cifar10", 10,
         lambda f: _cifar_binary(f, [f"data_batch_{i}.bin" for i in range(1, 6)] if train else ["test_batch.bin"], 1)),
        ("cifar-100-binary", "cifar100", 100,
         lambda f: _cifar_binary(f, ["train.bin" if train else "test.bin"], 2)),
    ]
    for sub, name, n_classes, read in variants:
        folder = root if root.name == sub else root / sub
        if folder.is_dir():
            try:
                x, y = read(folder)
            except FileNotFoundError as exc:
                raise DatasetNotFoundError(f"{folder} is incomplete ({exc.filename} missing); {_CIFAR_HELP}.") from None
            return ImageData(TensorImages(torch.from_numpy(x), torch.from_numpy(y)), n_classes, 32, name)
    return None


def load_dataset(data: str | os.PathLike, *, train: bool = True, image_size: int | None = None,
                 folder_size: int | None = None) -> ImageData:
    """Resolve ``data`` (an offline set name or a folder) into an :class:`ImageData`.

    Parameters
    ----------
    data : ``"digits"``, ``"lfw"``, or a folder (CIFAR layouts or ImageNet-style class folders)
    train : bool
        Training split (CIFAR ``data_batch_*`` / ``ROOT/train``) or test split.
    image_size : int, optional
        Side (px) the model sees. Default 32 (CIFAR and offline sets), ``folder_size`` for image folders.
    folder_size : int, optional
        Default side for image folders (the trainer passes the method's ``image_size`` default,
        e.g. TDANN's 224); None: 224.

    Raises
    ------
    DatasetNotFoundError
        Missing folder, incomplete CIFAR or no class folders — the message says what to put where.
    AdapterError
        ``data`` is a file, or ``image_size`` does not fit CIFAR.
    """
    key = str(data)
    if key in OFFLINE_SETS:
        return {"digits": digits, "lfw": lfw}[key](image_size or 32)
    root = Path(key).expanduser()
    if not root.exists():
        hint = " (CIFAR is not downloaded for you)" if key.lower().startswith("cifar") else ""
        raise DatasetNotFoundError(f"data folder {str(root)!r} does not exist{hint}; {_CIFAR_HELP}.")
    if not root.is_dir():
        raise AdapterError(f"data {str(root)!r} is a file, not a folder; {_CIFAR_HELP}.")
    found = _find_cifar(root, train)
    if found is not None:
        if image_size not in (None, 32):
            raise AdapterError(f"CIFAR images are 32×32; image_size={image_size} is not supported for them.")
        return found
    split = root / ("train" if train else "val")
    folder = split if split.is_dir() else root
    classes = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")] if folder.is_dir() else []
    if not classes:
        raise DatasetNotFoundError(f"no CIFAR files or class folders found in {str(root)!r}; {_CIFAR_HELP}.")
    from torchvision.datasets import ImageFolder

    base = ImageFolder(str(folder))
    return ImageData(base, len(base.classes), image_size or folder_size or 224, "imagefolder", in_memory=False)


#: ``augment`` values of the supervised task (``"reference"``: the method's own, resolved by the trainer).
AUGMENTS = ("none", "standard", "flip", "tdann")


def supervised_transform(image_size: int, in_memory: bool, augment: str = "standard") -> Callable:
    """Supervised augmentation -> float32 (C, H, W) in [0, 1].

    augment :
        ``"standard"`` — in-memory sets (CIFAR, offline): random crop with ``image_size // 8`` zero
        padding + horizontal flip (the CIFAR recipe); image folders: random resized crop to
        ``image_size`` + flip (the ImageNet recipe).
        ``"none"`` — no augmentation (the WS/AS references): the uint8 image scaled to [0, 1]
        (image folders are resized to ``image_size``, since their images differ in size).
        ``"flip"`` — horizontal flip only.
        ``"tdann"`` — TDANN's supervised ImageNet views (its VISSL config): random resized crop
        (scale 0.08–1) + flip + colour jitter 0.4 (brightness, contrast, saturation and hue), always applied.
    """
    from torchvision.transforms import v2

    if augment not in AUGMENTS:
        raise AdapterError(f"augment must be 'reference' or one of {AUGMENTS}; got {augment!r}.")
    fit = [] if in_memory else [v2.Resize((image_size, image_size), antialias=True)]
    steps = {
        "none": fit,
        "flip": fit + [v2.RandomHorizontalFlip()],
        "standard": [v2.RandomCrop(image_size, padding=image_size // 8) if in_memory
                     else v2.RandomResizedCrop(image_size, antialias=True), v2.RandomHorizontalFlip()],
        "tdann": [v2.RandomResizedCrop(image_size, antialias=True), v2.RandomHorizontalFlip(),
                  v2.ColorJitter(0.4, 0.4, 0.4, 0.4)],
    }[augment]
    return v2.Compose([v2.ToImage(), *steps, v2.ToDtype(torch.float32, scale=True)])


def _sample_seed(seed: int, epoch: int, index: int) -> int:
    # A fixed integer mix of (seed, epoch, index) — the same in every process and worker.
    return (int(seed) * 1_000_003 + int(epoch) * 7_919 + int(index) * 104_729 + 12_345) % (2**63 - 1)


class Augmented(Dataset):
    """Apply ``transform`` to ``base[i]`` with RNG draws seeded by (seed, epoch, i).

    The global torch RNG is saved and restored around each call, so augmenting
    never changes the RNG stream the model (dropout, neighbourhood sampling) uses.
    Call :meth:`set_epoch` before iterating an epoch.
    """

    def __init__(self, base: Dataset, transform: Callable, seed: int = 0) -> None:
        self.base = base
        self.transform = transform
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self.base[i]
        with torch.random.fork_rng(devices=[]):
            # CPU generator only: torch.manual_seed would also reseed CUDA, which fork_rng does not restore.
            torch.default_generator.manual_seed(_sample_seed(self.seed, self.epoch, i))
            out = self.transform(image)
        return out, torch.as_tensor(label, dtype=torch.int64)


class EpochSampler(Sampler[int]):
    """Shuffled, rank-partitioned indices of one epoch, resumable mid-epoch.

    Works like ``DistributedSampler(shuffle=True, drop_last=True)`` — a
    permutation drawn from a generator seeded by ``(seed, epoch)``, rank ``r``
    taking every ``world_size``-th index from position ``r`` — plus
    ``start_batch``: the first ``start_batch * batch_size`` of this rank's
    indices are skipped (already consumed before a checkpoint). Only whole
    batches are yielded.
    """

    def __init__(self, n: int, batch_size: int, *, seed: int = 0, epoch: int = 0, rank: int = 0,
                 world_size: int = 1, start_batch: int = 0) -> None:
        self.n, self.batch_size, self.seed, self.epoch = int(n), int(batch_size), int(seed), int(epoch)
        self.rank, self.world_size, self.start_batch = int(rank), int(world_size), int(start_batch)

    @staticmethod
    def batches_per_epoch(n: int, batch_size: int, world_size: int = 1) -> int:
        return (int(n) // int(world_size)) // int(batch_size)

    def _indices(self) -> torch.Tensor:
        g = torch.Generator().manual_seed(_sample_seed(self.seed, self.epoch, -1))
        perm = torch.randperm(self.n, generator=g)
        per_rank = self.n // self.world_size
        mine = perm[self.rank: per_rank * self.world_size: self.world_size]
        n_batches = self.batches_per_epoch(self.n, self.batch_size, self.world_size)
        return mine[self.start_batch * self.batch_size: n_batches * self.batch_size]

    def __iter__(self):
        return iter(self._indices().tolist())

    def __len__(self) -> int:
        nb = self.batches_per_epoch(self.n, self.batch_size, self.world_size)
        return max(0, nb - self.start_batch) * self.batch_size
