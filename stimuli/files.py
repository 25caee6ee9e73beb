"""Stimulus sets backed by image files on disk, read lazily per batch."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cortexsim.errors import StimulusError

from .bank import check_size
from .base import Normalize, StimulusSet

__all__ = ["IMAGE_EXTENSIONS", "FileSet", "read_images"]

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def read_images(paths: Sequence[str | Path], size: tuple[int, int], channels: int) -> torch.Tensor:
    """Read image files into a (B, C, H, W) float32 tensor in [0, 1].

    Each image is resized so it covers (H, W) and centre-cropped (aspect ratio
    kept, as ``PIL.ImageOps.fit``); grey files are replicated to RGB when
    ``channels=3``, RGB files converted to luma when ``channels=1``.
    """
    from PIL import Image, ImageOps

    h, w = size
    out = np.empty((len(paths), h, w, channels), np.uint8)
    for k, p in enumerate(paths):  # file decoding is inherently one file at a time
        try:
            with Image.open(p) as im:
                im = im.convert("RGB" if channels == 3 else "L")
                im = ImageOps.fit(im, (w, h), method=Image.Resampling.BILINEAR)
                out[k] = np.asarray(im).reshape(h, w, channels)
        except OSError as e:
            raise StimulusError(f"cannot read image file {p}: {e}") from e
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)


class FileSet(StimulusSet):
    """Images read from ``metadata['path']`` on demand (nothing is cached).

    Parameters
    ----------
    metadata : DataFrame with ``stimulus_id`` and ``path`` columns (+ any others).
    image_size : int or (H, W), required (files may differ in size).
    channels : 1 or 3 (default 3).
    """

    def __init__(
        self,
        metadata: pd.DataFrame,
        *,
        image_size: int | Sequence[int] = 224,
        channels: int | None = 3,
        normalize: Normalize = None,
    ) -> None:
        super().__init__(image_size=check_size(image_size), channels=channels or 3, normalize=normalize)
        self._set_metadata(metadata)
        self._paths = self._meta["path"].astype(str).to_numpy()

    def _native_shape(self) -> tuple[int, int, int]:
        return (self.channels, *self.image_size)  # type: ignore[misc]

    def _render(self, idx: np.ndarray) -> torch.Tensor:
        return read_images(self._paths[idx], self.image_size, self.channels)  # type: ignore[arg-type]


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
