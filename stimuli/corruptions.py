"""Image corruptions at graded levels, applicable to any stimulus set.

What ``level`` means (images are in [0, 1]; results are clipped to [0, 1]):

``"white"``
    Additive i.i.d. Gaussian noise, ``x + level · z`` with ``z ~ N(0, 1)`` drawn
    independently per pixel and channel: ``level`` is the noise standard deviation
    in image-intensity units.
``"pink"``
    Additive Gaussian noise with a 1/|f| *amplitude* spectrum (so power ∝ 1/|f|²,
    a log–log slope of −1 for the radially averaged amplitude and −2 for power;
    the DC term is zero). Each noise image/channel is scaled to zero mean and
    pixel standard deviation exactly ``level``, so white and pink noise at the
    same level have the same pixel variance.
``"salt_pepper"`` (alias ``"salt-and-pepper"``, ``"sp"``)
    Exactly ``round(level · H · W)`` pixel locations per image are replaced (all
    channels) by 0 or 1 with probability 1/2 each: ``level`` is the fraction of
    pixels replaced.

Truong & Hasson use levels .01 .05 .1 .15 .2 (``TRUONG_HASSON_LEVELS``).

Noise for stimulus *i* of the base set comes from a counter-based hash of
``(seed, i, kind)``: it does not depend on batching, and it is shared across
levels (common random numbers — level 0.2 white noise is exactly twice level
0.1, and the salt-and-pepper pixels at a lower level are a subset of those at a
higher one), which makes level-to-level comparisons less noisy.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from cortexsim.errors import StimulusError

from . import counter_rng
from .base import Normalize, StimulusSet

__all__ = ["KINDS", "TRUONG_HASSON_LEVELS", "CorruptedSet", "corrupt", "pink_noise", "apply_noise"]

TRUONG_HASSON_LEVELS: tuple[float, ...] = (0.01, 0.05, 0.1, 0.15, 0.2)
KINDS: tuple[str, ...] = ("white", "pink", "salt_pepper")
_ALIASES = {"salt-and-pepper": "salt_pepper", "sp": "salt_pepper", "s&p": "salt_pepper", "gaussian": "white"}


def _kind(kind: str) -> str:
    k = _ALIASES.get(str(kind).lower(), str(kind).lower())
    if k not in KINDS:
        raise StimulusError(f"unknown noise kind {kind!r}; use one of {list(KINDS)} (or 'salt-and-pepper')")
    return k


def pink_noise(seed: int, items: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Gaussian noise with a 1/|f| amplitude spectrum, unit pixel std per image and channel.

    Parameters
    ----------
    seed : int
    items : int array (B,)
        Item keys (the same key gives the same noise).
    shape : (C, H, W)

    Returns
    -------
    ndarray (B, C, H, W) float64, zero mean and unit std over (H, W).
    """
    c, h, w = shape
    white = counter_rng.normal(seed, items, 1, c * h * w).reshape(-1, c, h, w)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    fr = np.hypot(fx, fy)
    gain = np.divide(1.0, fr, out=np.zeros_like(fr), where=fr > 0)  # 1/|f|, DC removed
    noise = np.fft.irfft2(np.fft.rfft2(white) * gain, s=(h, w))
    noise -= noise.mean(axis=(-2, -1), keepdims=True)
    return noise / noise.std(axis=(-2, -1), keepdims=True)


def apply_noise(x: torch.Tensor, kind: str, level: float | np.ndarray, items: np.ndarray, seed: int) -> torch.Tensor:
    """Corrupt a batch (B, C, H, W) in [0, 1]; ``level`` scalar or (B,), ``items`` (B,) noise keys."""
    kind = _kind(kind)
    b, c, h, w = x.shape
    lv = np.broadcast_to(np.asarray(level, dtype=np.float64), (b,))
    xn = x.detach().cpu().numpy().astype(np.float64)
    if kind == "white":
        z = counter_rng.normal(seed, items, 0, c * h * w).reshape(b, c, h, w)
        out = xn + lv[:, None, None, None] * z
    elif kind == "pink":
        out = xn + lv[:, None, None, None] * pink_noise(seed, items, (c, h, w))
    else:
        u = counter_rng.uniform(seed, items, 2, h * w)  # which pixels
        k = np.rint(lv * h * w).astype(np.int64)
        ranks = np.argsort(np.argsort(u, axis=1), axis=1)  # rank of each pixel's key in its image
        hit = (ranks < k[:, None]).reshape(b, 1, h, w)
        salt = (counter_rng.uniform(seed, items, 3, h * w) < 0.5).reshape(b, 1, h, w)
        out = np.where(hit, salt.astype(np.float64), xn)
    return torch.from_numpy(np.clip(out, 0.0, 1.0).astype(np.float32))


class CorruptedSet(StimulusSet):
    """Every stimulus of ``base`` under every (kind, level); see the module docstring.

    Order: kind, then level, then base stimulus (fastest). Metadata: the base
    columns plus ``noise`` (kind) and ``noise_level``; ``stimulus_id`` is
    ``"<base id>|<kind>-<level>"``.
    """

    def __init__(
        self,
        base: StimulusSet,
        kinds: str | Sequence[str],
        levels: float | Sequence[float] = TRUONG_HASSON_LEVELS,
        *,
        seed: int = 0,
        normalize: Normalize = "inherit",
    ) -> None:
        super().__init__(normalize=base.normalize if normalize == "inherit" else normalize)
        kinds = [_kind(k) for k in ([kinds] if isinstance(kinds, str) else kinds)]
        lv = np.atleast_1d(np.asarray(levels, dtype=np.float64))
        if not kinds or lv.size == 0:
            raise StimulusError("corrupt needs at least one kind and one level")
        if (lv < 0).any():
            raise StimulusError(f"noise levels must be >= 0, got {lv[lv < 0].tolist()}")
        if "salt_pepper" in kinds and (lv > 1).any():
            raise StimulusError(f"salt_pepper level is a fraction of pixels and must be <= 1, got {lv.max()}")
        self.base, self.seed = base, int(seed)
        n = len(base)
        kk, ll, ii = (g.reshape(-1) for g in np.meshgrid(np.arange(len(kinds)), np.arange(lv.size), np.arange(n), indexing="ij"))
        self._kind_idx, self._level, self._base_idx = kk, lv[ll], ii
        self.kinds = kinds
        meta = base.metadata.iloc[ii].reset_index(drop=True)
        meta["noise"] = np.asarray(kinds, dtype=object)[kk].astype(str)
        meta["noise_level"] = lv[ll]
        meta["stimulus_id"] = meta["stimulus_id"] + "|" + meta["noise"] + "-" + pd.Series(lv[ll]).map("{:g}".format)
        self._set_metadata(meta)

    def _native_shape(self) -> tuple[int, int, int]:
        return self.base.shape

    def _render(self, idx: np.ndarray) -> torch.Tensor:
        x = self.base.load01(self._base_idx[idx])
        out = torch.empty_like(x)
        for k in np.unique(self._kind_idx[idx]):  # one vectorised call per noise kind
            sel = np.flatnonzero(self._kind_idx[idx] == k)
            items = self._base_idx[idx][sel]
            out[torch.from_numpy(sel)] = apply_noise(x[sel], self.kinds[k], self._level[idx][sel], items, self.seed)
        return out


def corrupt(
    stimuli: StimulusSet,
    kind: str | Sequence[str] = KINDS,
    levels: float | Sequence[float] = TRUONG_HASSON_LEVELS,
    seed: int = 0,
    **kwargs,
) -> CorruptedSet:
    """Corrupt every stimulus of a set at every level (see module docstring for what levels mean).

    Returns a :class:`CorruptedSet` of ``len(kinds) * len(levels) * len(stimuli)``
    stimuli with coords ``noise`` and ``noise_level`` added.
    """
    if not isinstance(stimuli, StimulusSet):
        raise StimulusError(f"corrupt() needs a StimulusSet, got {type(stimuli).__name__}")
    return CorruptedSet(stimuli, kind, levels, seed=seed, **kwargs)
