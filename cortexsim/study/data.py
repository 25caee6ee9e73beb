"""Offline digit data with a held-out split (the demo's and the reproductions').

Images are digits 0–9, black on white (coord ``numerosity``: the digit shown), from two
offline sources:

* scikit-learn's real handwritten digits (``load_digits``, 1,797 scans, 8 × 8), shown at
  ``image_size`` px by :func:`cortexsim.stimuli.digits` (``source="load_digits"``);
* digits rendered with the DejaVu fonts that ship with matplotlib, at random positions and
  sizes (``source="render"``), like Hannagan's Reset number dataset (9 fonts, 32 × 32 px).

:func:`scan_split` holds out a seeded quarter of the scans, by their index in
``load_digits`` (the demo). :func:`number_task` adds the fonts — two whole fonts
(:data:`HELDOUT_FONTS`) held out — and the 100-dimensional number codes of
:func:`cortexsim.stimuli.number_codes` that Reset maps digits onto. Nothing is downloaded.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Fonts of the training images and the two held out for recording (all DejaVu, in matplotlib).
TRAIN_FONTS = ("DejaVuSans", "DejaVuSans-Bold", "DejaVuSans-Oblique", "DejaVuSansMono", "DejaVuSerif",
               "DejaVuSerif-Bold")
HELDOUT_FONTS = ("DejaVuSerif-Italic", "DejaVuSansMono-Bold")
#: Fraction of the handwritten scans held out.
HOLDOUT = 0.25


@dataclass
class DigitSplit:
    """Training and held-out digit stimuli.

    Attributes
    ----------
    train, heldout : stimulus sets (coords ``numerosity``, ``source``, ``font``, …)
    heldout_scans : ``load_digits`` indices of the held-out handwritten scans
    codes : DataArray (numerosity, code_unit) of number codes (:func:`number_task`), else None
    """

    train: Any
    heldout: Any
    heldout_scans: np.ndarray
    codes: Any = None

    def tensors(self, which: str = "train"):
        """(images (N, 3, H, W) float, labels (N,) int64 numerosity) of ``train`` or ``heldout``."""
        import torch

        s = self.train if which == "train" else self.heldout
        labels = torch.as_tensor(s.metadata["numerosity"].to_numpy().astype(np.int64))
        return s.tensor(), labels

    def code_tensor(self):
        """(10, 100) float tensor: row n is the code of numerosity n."""
        import torch

        return torch.from_numpy(np.ascontiguousarray(self.codes.values))


def _scans(keep: np.ndarray, image_size: int, seed: int):
    """The handwritten scans whose ``load_digits`` index is in ``keep`` (each once)."""
    from .. import stimuli

    every = stimuli.digits(200, source="load_digits", image_size=image_size, seed=seed)  # ≤ 183 per digit: all
    meta = every.metadata
    first = ~meta["sklearn_index"].duplicated().to_numpy()
    rows = np.flatnonzero(first & np.isin(meta["sklearn_index"].to_numpy(), keep))
    return every.subset(rows)


def _held_scans(seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    n_scans = len(load_digits().target)
    perm = np.random.default_rng(seed).permutation(n_scans)
    held = np.sort(perm[: round(HOLDOUT * n_scans)])
    return np.setdiff1d(np.arange(n_scans), held), held


def scan_split(*, image_size: int = 32, seed: int = 0) -> DigitSplit:
    """The handwritten scans, a seeded quarter held out (449 of 1,797; the rest train)."""
    train_scans, held = _held_scans(seed)
    return DigitSplit(_scans(train_scans, image_size, seed), _scans(held, image_size, seed), held)


def number_task(*, image_size: int = 32, per_digit: int = 300, heldout_per_digit: int = 30,
                seed: int = 0) -> DigitSplit:
    """Scans and rendered fonts with their number codes (see the module docstring), from ``seed``.

    ``per_digit`` rendered training images per digit (over the six training fonts) and
    ``heldout_per_digit`` per digit in the two held-out fonts; every scan is used, three
    quarters for training.
    """
    from .. import stimuli

    train_scans, held = _held_scans(seed)
    train = stimuli.concat([stimuli.digits(per_digit, fonts=TRAIN_FONTS, image_size=image_size, seed=seed + 1),
                            _scans(train_scans, image_size, seed)], prefixes=["font", "scan"])
    heldout = stimuli.concat([stimuli.digits(heldout_per_digit, fonts=HELDOUT_FONTS, image_size=image_size,
                                             seed=seed + 2),
                              _scans(held, image_size, seed)], prefixes=["font", "scan"])
    codes = stimuli.number_codes(9, 100, start=0, seed=seed)
    return DigitSplit(train, heldout, held, codes)
