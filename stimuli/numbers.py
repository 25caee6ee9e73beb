"""Number stimuli for Reset-style number topography: number codes and digit images.

Number codes
    Hannagan et al. (Reset networks) map digit images onto 100-dimensional
    codes "taken from" Hannagan, Nieder, Viswanathan & Dehaene (2018, *A
    random-matrix theory of the number sense*), "obtained by power iteration of
    a randomly and locally connected matrix"; the paper gives no formula and the
    code file (``Numbers_stable.npy``) is not published in the text. What it does
    state is that the codes are *sparse, overlapping and real-valued*, with a
    *larger overlap between successive codes as numbers increase*. We therefore
    implement the standard number-neuron model that has exactly these
    properties — log-Gaussian tuning (Nieder & Miller 2003)::

        code[n, k] = g_k · exp(−(u(n) − μ_k)² / (2σ²)),   u(n) = log(1 + n)

    with ``dim`` units whose preferred values μ_k tile [u(start) − 2σ,
    u(n_max) + 2σ] evenly, unit gains ``g_k ~ LogNormal(0, 0.25)`` drawn from
    ``seed`` (random unit heterogeneity, as in a random network), tuning values
    below ``threshold`` set to 0 (sparsity), and each code scaled to unit L2 norm.
    ``u(n) = log(1 + n)`` is Weber-like compression that also gives 0 a code.
    Consequences (tested): cosine similarity between codes falls with numerical
    distance |n − m|, and similarity between n and n + 1 grows with n.

Digit images
    Black digits on white, like the Reset dataset (32×32, digits 0–9, several
    fonts, 6 x-shifts × 12 y-shifts, font size 15–20 px): ``source='render'``
    renders with the DejaVu fonts that ship with matplotlib; ``source='load_digits'``
    uses scikit-learn's 8×8 handwritten digits (inverted to black on white).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from cortexsim.errors import StimulusError

from .bank import BankSet, dejavu_fonts, render_texts
from .base import ConcatSet, Normalize

__all__ = ["number_codes", "digits", "DIGIT_FONTS"]

DIGIT_FONTS: tuple[str, ...] = (
    "DejaVuSans", "DejaVuSans-Bold", "DejaVuSans-Oblique", "DejaVuSansMono",
    "DejaVuSerif", "DejaVuSerif-Bold", "DejaVuSerif-Italic", "DejaVuSansMono-Bold",
)


def number_codes(
    n_max: int = 9,
    dim: int = 100,
    *,
    start: int = 1,
    sigma: float = 0.25,
    threshold: float = 0.1,
    seed: int = 0,
) -> xr.DataArray:
    """Sparse, overlapping number codes for numerosities ``start..n_max`` (see module docstring).

    Parameters
    ----------
    n_max : int
        Largest numerosity.
    dim : int
        Code length (100 in the Reset paper).
    start : int
        Smallest numerosity (1; use 0 to code the digit zero too).
    sigma : float
        Tuning width on the log(1 + n) axis.
    threshold : float
        Tuning values below this (relative to each unit's peak) are set to 0.
    seed : int
        Seed of the unit gains.

    Returns
    -------
    xarray.DataArray (numerosity, code_unit) float32, rows of unit L2 norm.
    """
    if not (isinstance(n_max, (int, np.integer)) and isinstance(start, (int, np.integer))) or start < 0 or n_max < start:
        raise StimulusError(f"need integers 0 <= start <= n_max, got start={start!r}, n_max={n_max!r}")
    if dim < 2:
        raise StimulusError(f"dim must be >= 2, got {dim}")
    if not sigma > 0 or not 0 <= threshold < 1:
        raise StimulusError(f"need sigma > 0 and 0 <= threshold < 1, got sigma={sigma}, threshold={threshold}")
    n = np.arange(start, n_max + 1)
    u = np.log1p(n)
    mu = np.linspace(u[0] - 2 * sigma, u[-1] + 2 * sigma, dim)
    gain = np.random.default_rng(seed).lognormal(0.0, 0.25, dim)
    tuning = np.exp(-((u[:, None] - mu[None, :]) ** 2) / (2 * sigma**2))
    code = np.where(tuning >= threshold, tuning, 0.0) * gain
    code /= np.linalg.norm(code, axis=1, keepdims=True)
    return xr.DataArray(
        code.astype(np.float32),
        dims=("numerosity", "code_unit"),
        coords={"numerosity": n, "preferred_log1p": ("code_unit", mu)},
        name="number_code",
        attrs={"model": "log-Gaussian tuning on log(1+n)", "sigma": sigma, "threshold": threshold, "seed": seed},
    )


def _rendered_digits(
    values: np.ndarray, n_per_digit: int, fonts: Sequence[str], rng: np.random.Generator, out: int,
    ink_size: tuple[int, int], **opts,
) -> BankSet:
    canvas, base_px = 128, 64
    bank = render_texts([str(v) for v in values], list(fonts), canvas=canvas, size_px=base_px)
    nf = len(fonts)
    n = len(values) * n_per_digit
    digit = np.repeat(np.arange(len(values)), n_per_digit)
    font = rng.integers(0, nf, n)
    size = rng.integers(ink_size[0], ink_size[1] + 1, n)  # font size in output pixels (Reset: 15-20 at 32 px)
    ref = 32.0  # shifts/sizes are defined on a 32-px image as in the Reset dataset, then scaled
    dx = rng.integers(-3, 3, n)  # 6 x positions
    dy = rng.integers(-6, 6, n)  # 12 y positions
    side = ref * base_px / size  # bank pixels covered by the 32-px output window
    cx = canvas / 2 - dx * base_px / size
    cy = canvas / 2 - dy * base_px / size
    boxes = np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], 1)
    meta = pd.DataFrame(
        {
            "stimulus_id": [f"digit-render-{i:05d}" for i in range(n)],
            "numerosity": values[digit],
            "source": "render",
            "font": np.asarray(fonts)[font],
            "dx_px": dx * out / ref,
            "dy_px": dy * out / ref,
        }
    )
    import torch

    return BankSet(torch.from_numpy(bank[:, None]), digit * nf + font, boxes, meta, ink=True, image_size=out, **opts)


def _sklearn_digits(values: np.ndarray, n_per_digit: int, rng: np.random.Generator, out: int, **opts) -> BankSet:
    import torch
    from sklearn.datasets import load_digits

    d = load_digits()
    ink = np.pad(d.images / 16.0, ((0, 0), (2, 2), (2, 2)))  # 8x8 -> 12x12 with a white margin
    # balanced: n_per_digit images of each digit, drawn without replacement while they last
    keys = rng.random(len(d.target))
    picks = []
    for v in values:  # ten classes
        pool = np.flatnonzero(d.target == v)
        pool = pool[np.argsort(keys[pool])]
        picks.append(pool[np.arange(n_per_digit) % len(pool)])
    src = np.concatenate(picks)
    n = len(src)
    meta = pd.DataFrame(
        {
            "stimulus_id": [f"digit-sklearn-{i:05d}" for i in range(n)],
            "numerosity": d.target[src],
            "source": "load_digits",
            "font": "handwritten",
            "dx_px": 0.0,
            "dy_px": 0.0,
            "sklearn_index": src,
        }
    )
    boxes = np.tile(np.array([[0, 0, 12, 12]], np.float32), (n, 1))
    return BankSet(torch.from_numpy(ink[:, None].astype(np.float32)), src, boxes, meta, ink=True, image_size=out, **opts)


def digits(
    n_per_digit: int = 20,
    *,
    source: str = "render",
    values: Sequence[int] = tuple(range(10)),
    fonts: Sequence[str] = DIGIT_FONTS,
    font_px: tuple[int, int] = (15, 20),
    image_size: int = 32,
    channels: int | None = 3,
    normalize: Normalize = None,
    seed: int = 0,
) -> BankSet | ConcatSet:
    """Digit images (black on white), ``n_per_digit`` per digit; coord ``numerosity``.

    Parameters
    ----------
    n_per_digit : int
        Images per digit value (per source when ``source='both'``).
    source : {'render', 'load_digits', 'both'}
        Rendered DejaVu digits at random positions (6 x-shifts × 12 y-shifts on a
        32-px grid, scaled to ``image_size``) and font sizes ``font_px`` (px at
        32 px), or scikit-learn's handwritten 8×8 digits, or both.
    values : digits to include (0-9).
    fonts : DejaVu font names (see :func:`cortexsim.stimuli.bank.dejavu_fonts`).
    image_size, channels, normalize : see :class:`~cortexsim.stimuli.base.StimulusSet`.

    Metadata: ``numerosity``, ``source``, ``font``, ``dx_px``, ``dy_px``.
    """
    vals = np.asarray(values, dtype=np.int64)
    if vals.size == 0 or (vals < 0).any() or (vals > 9).any():
        raise StimulusError(f"values must be digits 0-9, got {list(values)}")
    if n_per_digit < 1:
        raise StimulusError(f"n_per_digit must be >= 1, got {n_per_digit}")
    if source not in ("render", "load_digits", "both"):
        raise StimulusError(f"source must be 'render', 'load_digits' or 'both', got {source!r}")
    bad = sorted(set(fonts) - set(dejavu_fonts()))
    if bad:
        raise StimulusError(f"unknown font(s) {bad}; available: {sorted(dejavu_fonts())}")
    if not 1 <= font_px[0] <= font_px[1]:
        raise StimulusError(f"font_px must be (min, max) with 1 <= min <= max, got {font_px}")
    rng = np.random.default_rng(seed)
    opts = dict(channels=channels, normalize=normalize)
    parts = []
    if source in ("render", "both"):
        parts.append(_rendered_digits(vals, n_per_digit, fonts, rng, image_size, font_px, **opts))
    if source in ("load_digits", "both"):
        parts.append(_sklearn_digits(vals, n_per_digit, rng, image_size, **opts))
    return parts[0] if len(parts) == 1 else ConcatSet(parts)
