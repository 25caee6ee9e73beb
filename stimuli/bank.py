"""Sets cut from a small bank of source images, and text rendering with installed fonts.

A :class:`BankSet` item is (source image, crop box, horizontal flip). A whole
batch is rendered by one ``torchvision.ops.roi_align`` call (crop + resize with
adaptive area sampling, i.e. antialiased), so sets of thousands of jittered
crops cost only the small bank in memory.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cortexsim.errors import StimulusError

from .base import Normalize, StimulusSet, _size2

__all__ = ["BankSet", "dejavu_fonts", "pad_to_bank", "render_texts"]


class BankSet(StimulusSet):
    """Stimuli rendered as crops of a bank of source images.

    Parameters
    ----------
    bank : Tensor (S, C, Hb, Wb) float in [0, 1]
        Source images (smaller sources padded; boxes must stay in their valid area).
    src : int array (N,)
        Source index of each stimulus.
    boxes : float array (N, 4)
        Crop boxes ``(x1, y1, x2, y2)`` in bank pixel coordinates (may extend
        past the source when ``ink`` is True).
    flip : bool array (N,), optional
        Mirror the crop left-right.
    metadata : DataFrame
        N rows with ``stimulus_id`` and the set's columns.
    ink : bool
        The bank stores ``1 - image`` (ink on a zero background), so regions of a
        box outside the source render as white paper. Used for text and digits.
    image_size : int or (H, W)
        Output size in pixels (crops are resampled straight to it).
    """

    def __init__(
        self,
        bank: torch.Tensor,
        src: np.ndarray,
        boxes: np.ndarray,
        metadata: pd.DataFrame,
        *,
        flip: np.ndarray | None = None,
        ink: bool = False,
        image_size: int | Sequence[int] = 224,
        channels: int | None = None,
        normalize: Normalize = None,
    ) -> None:
        super().__init__(image_size=check_size(image_size), channels=channels, normalize=normalize)
        self.bank = bank.to(torch.float32).contiguous()
        n = len(metadata)
        self.src = np.asarray(src, dtype=np.int64).reshape(n)
        self.boxes = np.asarray(boxes, dtype=np.float32).reshape(n, 4)
        self.flip = np.zeros(n, bool) if flip is None else np.asarray(flip, bool).reshape(n)
        self.ink = ink
        self._set_metadata(metadata)

    def _native_shape(self) -> tuple[int, int, int]:
        return (self.bank.shape[1], *self.image_size)  # type: ignore[misc]

    def _render(self, idx: np.ndarray) -> torch.Tensor:
        from torchvision.ops import roi_align

        rois = torch.from_numpy(np.concatenate([self.src[idx, None].astype(np.float32), self.boxes[idx]], axis=1))
        # sampling_ratio=0: adaptive number of samples per output bin = area averaging (antialiasing)
        x = roi_align(self.bank, rois, output_size=self.image_size, spatial_scale=1.0, sampling_ratio=0, aligned=True)
        flip = torch.from_numpy(self.flip[idx]).view(-1, 1, 1, 1)
        x = torch.where(flip, x.flip(-1), x)
        return 1.0 - x if self.ink else x


def pad_to_bank(images: Sequence[np.ndarray]) -> tuple[torch.Tensor, np.ndarray]:
    """Stack (H, W) or (H, W, C) images in [0, 1] into a zero-padded (S, C, Hmax, Wmax) bank.

    Returns the bank and the valid (h, w) of each source, shape (S, 2).
    """
    arrs = [np.atleast_3d(np.asarray(a, dtype=np.float32)) for a in images]
    c = max(a.shape[2] for a in arrs)
    hw = np.array([a.shape[:2] for a in arrs])
    bank = np.zeros((len(arrs), c, hw[:, 0].max(), hw[:, 1].max()), np.float32)
    for k, a in enumerate(arrs):  # a few source images, once per set construction
        bank[k, :, : a.shape[0], : a.shape[1]] = np.moveaxis(np.broadcast_to(a, (*a.shape[:2], c)), 2, 0)
    return torch.from_numpy(bank), hw


@functools.lru_cache(maxsize=1)
def dejavu_fonts() -> dict[str, str]:
    """The DejaVu TrueType fonts that ship with matplotlib: name -> file path."""
    import matplotlib

    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    fonts = {p.stem: str(p) for p in sorted(ttf.glob("DejaVu*.ttf")) if "Display" not in p.stem}
    if not fonts:
        raise StimulusError(f"no DejaVu fonts found in {ttf}; is matplotlib installed completely?")
    return fonts


@functools.lru_cache(maxsize=32)
def _render_texts_cached(texts: tuple[str, ...], fonts: tuple[str, ...], canvas: int, size_px: int) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    paths = dejavu_fonts()
    out = np.zeros((len(texts) * len(fonts), canvas, canvas), np.float32)
    k = 0
    for text in texts:  # renders the small glyph bank once; stimuli are crops of it
        for name in fonts:
            font = ImageFont.truetype(paths[name], size_px)
            img = Image.new("L", (canvas, canvas), 0)
            # anchor "mm": the text's middle (horizontal and vertical) at the canvas centre
            ImageDraw.Draw(img).text((canvas / 2, canvas / 2), text, font=font, fill=255, anchor="mm")
            out[k] = np.asarray(img, np.float32) / 255.0
            k += 1
    return out


def render_texts(texts: Sequence[str], fonts: Sequence[str], *, canvas: int = 128, size_px: int = 64) -> np.ndarray:
    """Render every (text, font) pair as white-on-black ink, centred.

    Parameters
    ----------
    texts : sequence of str
    fonts : sequence of font names (keys of :func:`dejavu_fonts`)
    canvas : int
        Square canvas side in pixels.
    size_px : int
        Font size in pixels.

    Returns
    -------
    ndarray (len(texts) * len(fonts), canvas, canvas) float32 ink in [0, 1],
    text-major order.
    """
    unknown = sorted(set(fonts) - set(dejavu_fonts()))
    if unknown:
        raise StimulusError(f"unknown font(s) {unknown}; available: {sorted(dejavu_fonts())}")
    return _render_texts_cached(tuple(texts), tuple(fonts), int(canvas), int(size_px))


def jitter_boxes(
    rng: np.random.Generator,
    hw: np.ndarray,
    *,
    scale: tuple[float, float],
    shift: float,
    aspect: float = 1.0,
) -> np.ndarray:
    """Random square-ish crop boxes inside sources of size ``hw`` (N, 2).

    The box side is ``U(scale) * min(h, w)`` (times ``aspect`` in width); its
    centre is the source centre moved by ``U(-shift, shift) * side`` in x and y
    and then clipped so the box stays inside the source.

    Returns
    -------
    ndarray (N, 4) float32 boxes (x1, y1, x2, y2).
    """
    hw = np.asarray(hw, dtype=np.float64)
    n = len(hw)
    side = rng.uniform(*scale, size=n) * hw.min(axis=1)
    bw, bh = np.minimum(side * aspect, hw[:, 1]), np.minimum(side, hw[:, 0])
    cx = hw[:, 1] / 2 + rng.uniform(-shift, shift, n) * side
    cy = hw[:, 0] / 2 + rng.uniform(-shift, shift, n) * side
    cx = np.clip(cx, bw / 2, hw[:, 1] - bw / 2)
    cy = np.clip(cy, bh / 2, hw[:, 0] - bh / 2)
    return np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1).astype(np.float32)


def check_size(image_size: int | Sequence[int]) -> tuple[int, int]:
    hw = _size2(image_size)
    if hw is None:
        raise StimulusError("image_size is required for this set (an int or an (H, W) pair)")
    return hw
