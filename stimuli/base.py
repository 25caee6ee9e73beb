"""The StimulusSet protocol and its generic building blocks.

A stimulus set is an indexable collection of images with one metadata row per
image::

    len(s)                      number of stimuli N
    s[i]                        torch.Tensor (C, H, W) float32
    s[2:10], s[[0, 5]]          a new StimulusSet (a view, nothing is rendered)
    s.load(idx)                 torch.Tensor (B, C, H, W) float32 for an index array
    s.batches(batch_size)       iterator of (B, C, H, W) tensors, in order
    s.metadata                  pandas.DataFrame, N rows: unique str ``stimulus_id``
                                + the set's own columns (become Sheet stimulus coords)

Value range
    Every set renders images in **[0, 1]** (0 = black, 1 = full intensity) at the
    requested ``image_size`` and ``channels``. The optional ``normalize`` hook is
    applied last, so ``s.load`` returns normalised values while ``s.load01``
    always returns the [0, 1] images (what corruptions and previews use).

Laziness and determinism
    Images are produced per batch from a compact description (parameters, a bank
    of source images, or file paths); nothing of size N×C×H×W is held unless the
    caller asks for it with :meth:`StimulusSet.tensor`. Every random choice is
    drawn once at construction from ``seed`` (or from a counter-based hash of
    ``(seed, item)``), so an item's pixels do not depend on batch size or order.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Union

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from cortexsim.errors import CortexsimError, DatasetNotFoundError, StimulusError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ConcatSet",
    "DatasetNotFoundError",
    "StimulusSet",
    "SubsetSet",
    "concat",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
# ITU-R BT.601 luma weights, the usual RGB -> grey conversion (PIL "L" uses the same).
_LUMA = torch.tensor([0.299, 0.587, 0.114])

Normalize = Union[None, str, tuple, Callable[[torch.Tensor], torch.Tensor]]
Index = Union[int, slice, Sequence[int], np.ndarray, torch.Tensor]



def _size2(image_size: int | Sequence[int] | None, name: str = "image_size") -> tuple[int, int] | None:
    if image_size is None:
        return None
    if isinstance(image_size, (int, np.integer)):
        image_size = (int(image_size), int(image_size))
    hw = tuple(int(v) for v in image_size)
    if len(hw) != 2 or min(hw) < 1:
        raise StimulusError(f"{name} must be a positive int or an (H, W) pair, got {image_size!r}")
    return hw  # type: ignore[return-value]


def _check_channels(channels: int | None) -> int | None:
    if channels not in (None, 1, 3):
        raise StimulusError(f"channels must be 1 (grey), 3 (RGB) or None (native), got {channels!r}")
    return channels


def _normalizer(normalize: Normalize) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """Turn the ``normalize`` option into a function on (B, C, H, W) batches."""
    if normalize is None or callable(normalize):
        return normalize  # type: ignore[return-value]
    if isinstance(normalize, str):
        if normalize.lower() != "imagenet":
            raise StimulusError(
                f"normalize={normalize!r} is unknown; use 'imagenet', a (mean, std) pair or a callable"
            )
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    elif isinstance(normalize, tuple) and len(normalize) == 2:
        mean, std = normalize
    else:
        raise StimulusError(f"normalize must be None, 'imagenet', (mean, std) or a callable, got {normalize!r}")
    m = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
    s = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
    if (s <= 0).any():
        raise StimulusError(f"normalize std must be > 0, got {std!r}")

    def apply(x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        mm, ss = m, s
        if mm.numel() != c:  # e.g. ImageNet stats on a grey set: use the channel means
            mm, ss = mm.mean().expand(c), ss.mean().expand(c)
        return (x - mm.view(1, c, 1, 1)) / ss.view(1, c, 1, 1)

    return apply


def convert_channels(x: torch.Tensor, channels: int | None) -> torch.Tensor:
    """Grey -> RGB by replication, RGB -> grey by BT.601 luma; (B, C, H, W) in and out."""
    if channels is None or x.shape[1] == channels:
        return x
    if channels == 3 and x.shape[1] == 1:
        return x.expand(-1, 3, -1, -1).contiguous()
    if channels == 1 and x.shape[1] == 3:
        return (x * _LUMA.to(x).view(1, 3, 1, 1)).sum(1, keepdim=True)
    raise StimulusError(f"cannot convert {x.shape[1]} channels to {channels}")


def resize(x: torch.Tensor, hw: tuple[int, int] | None) -> torch.Tensor:
    """Antialiased bilinear resize of a (B, C, H, W) batch (no-op when already ``hw``)."""
    if hw is None or tuple(x.shape[-2:]) == hw:
        return x
    # bilinear (with antialias) is a convex combination: values stay inside [0, 1]
    return F.interpolate(x, size=hw, mode="bilinear", antialias=True, align_corners=False)


def _as_indices(idx: Index, n: int) -> np.ndarray:
    if isinstance(idx, slice):
        return np.arange(n)[idx]
    if isinstance(idx, torch.Tensor):
        idx = idx.cpu().numpy()
    a = np.asarray(idx)
    if a.dtype == bool:
        if a.shape != (n,):
            raise IndexError(f"boolean mask has shape {a.shape}, expected ({n},)")
        return np.flatnonzero(a)
    if a.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(a.dtype, np.integer):
        raise IndexError(f"stimulus indices must be integers, got dtype {a.dtype}")
    a = a.astype(np.int64).reshape(-1)
    if (a >= n).any() or (a < -n).any():
        raise IndexError(f"stimulus index out of range for a set of {n} stimuli")
    return np.where(a < 0, a + n, a)


class StimulusSet:
    """Base class of every stimulus set (see the module docstring for the protocol).

    Parameters
    ----------
    image_size : int or (H, W), optional
        Output size in pixels; ``None`` keeps the set's native size.
    channels : {1, 3, None}
        1 = grey, 3 = RGB (grey images are replicated so they feed 3-channel
        models), ``None`` = native.
    normalize : None, 'imagenet', (mean, std) or callable
        Applied to (B, C, H, W) batches in [0, 1] after resizing, e.g.
        ``'imagenet'`` gives ``(x - IMAGENET_MEAN) / IMAGENET_STD`` per channel.

    Subclasses set ``self._meta`` (DataFrame) and implement ``_native_shape()``
    -> (C, H, W) and ``_render(idx)`` -> (B, C, H, W) float32 tensor in [0, 1]
    for an int64 index array (vectorised over the batch where possible).
    """

    _meta: pd.DataFrame

    def __init__(
        self,
        *,
        image_size: int | Sequence[int] | None = None,
        channels: int | None = None,
        normalize: Normalize = None,
    ) -> None:
        self.image_size = _size2(image_size)
        self.channels = _check_channels(channels)
        self.normalize = normalize
        self._norm = _normalizer(normalize)

    # -- to implement -------------------------------------------------------------
    def _native_shape(self) -> tuple[int, int, int]:
        raise NotImplementedError

    def _render(self, idx: np.ndarray) -> torch.Tensor:
        raise NotImplementedError

    # -- protocol ---------------------------------------------------------------------
    @property
    def metadata(self) -> pd.DataFrame:
        """One row per stimulus: ``stimulus_id`` (unique str) + the set's columns."""
        return self._meta

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image this set yields."""
        c, h, w = self._native_shape()
        if self.channels is not None:
            c = self.channels
        if self.image_size is not None:
            h, w = self.image_size
        return (c, h, w)

    def __len__(self) -> int:
        return len(self._meta)

    def load01(self, idx: Index) -> torch.Tensor:
        """Images ``idx`` as a (B, C, H, W) float32 tensor in [0, 1] (no normalisation)."""
        ii = _as_indices(idx, len(self))
        if ii.size == 0:
            return torch.zeros((0, *self.shape), dtype=torch.float32)
        x = self._render(ii).to(torch.float32)
        x = resize(convert_channels(x, self.channels), self.image_size)
        return x.clamp_(0.0, 1.0)

    def load(self, idx: Index) -> torch.Tensor:
        """Images ``idx`` as a (B, C, H, W) float32 tensor, normalised if ``normalize`` is set."""
        x = self.load01(idx)
        return self._norm(x) if self._norm is not None else x

    def __getitem__(self, idx: Index) -> Any:
        if isinstance(idx, (int, np.integer)):
            n = len(self)
            if not -n <= idx < n:
                raise IndexError(f"stimulus index {idx} out of range for a set of {n} stimuli")
            return self.load([int(idx)])[0]
        return self.subset(idx)

    def __iter__(self) -> Iterator[torch.Tensor]:
        for batch in self.batches(64):
            yield from batch

    def batches(
        self, batch_size: int = 64, *, start: int = 0, stop: int | None = None, progress: bool = False
    ) -> Iterator[torch.Tensor]:
        """Yield (B, C, H, W) float32 batches of stimuli ``start:stop`` in order."""
        if batch_size < 1:
            raise StimulusError(f"batch_size must be >= 1, got {batch_size}")
        ii = np.arange(len(self))[start:stop]
        chunks = [ii[k : k + batch_size] for k in range(0, len(ii), batch_size)]
        if progress:
            from tqdm.auto import tqdm

            chunks = tqdm(chunks, desc=f"{type(self).__name__} batches", unit="batch", disable=None)  # tty only
        for chunk in chunks:
            yield self.load(chunk)

    def tensor(self) -> torch.Tensor:
        """All images as one (N, C, H, W) tensor (holds everything in memory)."""
        return self.load(np.arange(len(self)))

    def subset(self, indices: Index) -> "SubsetSet":
        """A view on stimuli ``indices`` (metadata rows re-indexed from 0)."""
        return SubsetSet(self, indices)

    def __repr__(self) -> str:
        cols = [c for c in self._meta.columns if c != "stimulus_id"]
        return f"<{type(self).__name__}: {len(self)} stimuli, shape {self.shape}, coords {cols}>"

    # -- helpers for subclasses -----------------------------------------------------
    def _set_metadata(self, meta: pd.DataFrame | dict) -> None:
        meta = pd.DataFrame(meta).reset_index(drop=True)
        if "stimulus_id" not in meta.columns:
            raise StimulusError("metadata needs a 'stimulus_id' column")
        meta["stimulus_id"] = meta["stimulus_id"].astype(str)
        dup = meta["stimulus_id"].duplicated()
        if dup.any():
            raise StimulusError(
                f"stimulus_id must be unique; repeated: {meta['stimulus_id'][dup].unique()[:5].tolist()}"
            )
        self._meta = meta


class SubsetSet(StimulusSet):
    """A view on some stimuli of a parent set; keeps the parent's size, channels and normalisation."""

    def __init__(self, parent: StimulusSet, indices: Index) -> None:
        super().__init__(normalize=parent.normalize)
        self.parent = parent
        self.indices = _as_indices(indices, len(parent))
        self._set_metadata(parent.metadata.iloc[self.indices])

    def _native_shape(self) -> tuple[int, int, int]:
        return self.parent.shape

    def _render(self, idx: np.ndarray) -> torch.Tensor:
        return self.parent.load01(self.indices[idx])


class ConcatSet(StimulusSet):
    """Stimuli of several sets one after the other.

    Metadata columns are the union of the children's; a column a child lacks is
    filled with ``"none"`` (text columns) or NaN (numeric). ``stimulus_id`` must
    stay unique (give ``prefixes`` when children share ids). Children must yield
    the same (C, H, W) unless ``image_size``/``channels`` are given here.
    """

    def __init__(
        self,
        sets: Sequence[StimulusSet],
        *,
        prefixes: Sequence[str] | None = None,
        image_size: int | Sequence[int] | None = None,
        channels: int | None = None,
        normalize: Normalize = "inherit",
    ) -> None:
        sets = list(sets)
        if not sets:
            raise StimulusError("concat needs at least one stimulus set")
        if normalize == "inherit":
            normalize = sets[0].normalize
        super().__init__(image_size=image_size, channels=channels, normalize=normalize)
        self.sets = sets
        shapes = {self._child_shape(s) for s in sets}
        if len(shapes) > 1:
            raise StimulusError(
                f"cannot concatenate sets with different image shapes {sorted(shapes)}; "
                "pass image_size= and channels= to concat()"
            )
        metas = [s.metadata for s in sets]
        if prefixes is not None:
            if len(prefixes) != len(sets):
                raise StimulusError(f"prefixes has {len(prefixes)} entries for {len(sets)} sets")
            metas = [m.assign(stimulus_id=p + m["stimulus_id"]) for p, m in zip(prefixes, metas)]
        meta = pd.concat(metas, ignore_index=True)
        for col in meta.columns:
            if meta[col].dtype == object:
                meta[col] = meta[col].fillna("none")
        self._set_metadata(meta)
        self._offsets = np.cumsum([0] + [len(s) for s in sets])

    def _child_shape(self, s: StimulusSet) -> tuple[int, int, int]:
        c, h, w = s.shape
        return (self.channels or c, *(self.image_size or (h, w)))

    def _native_shape(self) -> tuple[int, int, int]:
        return self._child_shape(self.sets[0])

    def _render(self, idx: np.ndarray) -> torch.Tensor:
        which = np.searchsorted(self._offsets, idx, side="right") - 1
        out = torch.empty((len(idx), *self.shape), dtype=torch.float32)
        for k in np.unique(which):  # one vectorised call per child set
            sel = np.flatnonzero(which == k)
            x = self.sets[k].load01(idx[sel] - self._offsets[k])
            out[torch.from_numpy(sel)] = resize(convert_channels(x, self.channels), self.image_size)
        return out


def concat(*sets: StimulusSet, **kwargs: Any) -> ConcatSet:
    """Concatenate stimulus sets (see :class:`ConcatSet`)."""
    if len(sets) == 1 and not isinstance(sets[0], StimulusSet):
        sets = tuple(sets[0])  # concat([a, b]) works too
    return ConcatSet(sets, **kwargs)
