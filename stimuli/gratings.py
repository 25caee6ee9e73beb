"""Sinusoidal gratings with an explicit field of view.

Luminance profile (values in [0, 1])::

    I(x, y) = 0.5 + 0.5 · C · sin(2π f (x cos θ + y sin θ) + φ)

* ``x, y`` in degrees of visual angle from the image centre, x to the right,
  y **up** (row 0 is the top). Pixels are square; ``ppd = width_px / fov_deg``.
* ``f`` (``sf_cpd``) in cycles per degree; must be below the Nyquist limit
  ``ppd / 2``.
* ``θ`` (``orientation_deg``) is the direction of the wave vector measured
  counter-clockwise from +x, so θ = 0 gives vertical bars and θ = 90 horizontal
  bars (the bars run along θ + 90°).
* ``φ`` (``phase``) in radians; ``C`` (``contrast``) in [0, 1] (Michelson).

Colour: ``color="bw"`` renders I as grey (R = G = B = I). ``color="color"``
modulates between two colours, ``pixel = I · c_a + (1 − I) · c_b`` with the
default pair red ``c_a = (1, 0, 0)`` and green ``c_b = (0, 1, 0)`` (the L−M
cardinal axis that drives V1 colour blobs); change it with ``color_pair``.

TDANN default set (Margalit et al. 2024): 8 orientations (0, 22.5, …, 157.5°)
× 8 spatial frequencies × 5 phases (0, 2π/5, …) × {bw, color} = 640 images.
The TDANN spatial frequencies are not given in the paper text we have; we use 8
log-spaced values from 0.5 to 8 cycles/deg (``TDANN_SF_CPD``), which for a
224-px image spanning 8.2° (27.3 px/deg, Nyquist 13.7 cycles/deg) go from about
4 cycles per image to 3.4 px per cycle — the band of macaque V1 SF tuning, all
safely below Nyquist.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from cortexsim.errors import StimulusError

from .base import Normalize, StimulusSet, _size2

__all__ = ["TDANN_SF_CPD", "Gratings", "gratings", "tdann_gratings"]

TDANN_ORIENTATIONS_DEG = np.arange(8) * 180.0 / 8
TDANN_SF_CPD = 0.5 * 16.0 ** (np.arange(8) / 7)  # 0.5 ... 8 cycles/deg, log-spaced
TDANN_PHASES = np.arange(5) * 2 * np.pi / 5
DEFAULT_COLOR_PAIR = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))


class Gratings(StimulusSet):
    """Full factorial set of sinusoidal gratings (see module docstring for the formula).

    Parameters
    ----------
    orientations_deg, sfs_cpd, phases, contrasts : sequences of float
        Levels of each factor (degrees, cycles/deg, radians, Michelson in [0, 1]).
    colors : sequence of {'bw', 'color'}
    image_size : int or (H, W)
        Image size in pixels (the grating is rendered at this size).
    fov_deg : float
        Horizontal field of view of the image in degrees of visual angle.
    aperture_deg : float, optional
        Radius of a circular aperture in degrees; outside it the image is the
        mean luminance (grey 0.5, or the mean of the colour pair).
    color_pair : ((r, g, b), (r, g, b))
        The two colours of colour gratings (at I = 1 and I = 0).

    Metadata columns: ``orientation_deg``, ``sf_cpd``, ``phase`` (rad), ``color``,
    ``contrast``. Order: colour, contrast, SF, orientation, phase (phase fastest).
    """

    def __init__(
        self,
        orientations_deg: Sequence[float] = TDANN_ORIENTATIONS_DEG,
        sfs_cpd: Sequence[float] = TDANN_SF_CPD,
        phases: Sequence[float] = TDANN_PHASES,
        *,
        colors: Sequence[str] = ("bw",),
        contrasts: float | Sequence[float] = 1.0,
        image_size: int | Sequence[int] = 224,
        fov_deg: float = 8.2,
        aperture_deg: float | None = None,
        color_pair: Sequence[Sequence[float]] = DEFAULT_COLOR_PAIR,
        channels: int | None = None,
        normalize: Normalize = None,
    ) -> None:
        hw = _size2(image_size)
        if hw is None:
            raise StimulusError("gratings need image_size (pixels)")
        super().__init__(image_size=hw, channels=channels, normalize=normalize)
        if not fov_deg > 0:
            raise StimulusError(f"fov_deg must be > 0 degrees, got {fov_deg}")
        self.fov_deg = float(fov_deg)
        self.ppd = hw[1] / self.fov_deg  # pixels per degree (square pixels)
        nyquist = self.ppd / 2
        sfs = np.atleast_1d(np.asarray(sfs_cpd, dtype=np.float64))
        if (sfs <= 0).any():
            raise StimulusError(f"sf_cpd must be > 0 cycles/deg, got {sfs[sfs <= 0].tolist()}")
        if (sfs >= nyquist).any():
            raise StimulusError(
                f"sf_cpd {sfs[sfs >= nyquist].round(3).tolist()} cycles/deg is at or above the Nyquist limit "
                f"{nyquist:.3f} cycles/deg for {hw[1]} px over fov_deg={self.fov_deg} "
                f"({self.ppd:.2f} px/deg); lower sf_cpd or use more pixels / a smaller field of view"
            )
        con = np.atleast_1d(np.asarray(contrasts, dtype=np.float64))
        if (con < 0).any() or (con > 1).any():
            raise StimulusError(f"contrast must be in [0, 1] (Michelson), got {con.tolist()}")
        colors = list(colors)
        bad = [c for c in colors if c not in ("bw", "color")]
        if bad:
            raise StimulusError(f"color must be 'bw' or 'color', got {bad}")
        pair = np.asarray(color_pair, dtype=np.float32)
        if pair.shape != (2, 3) or (pair < 0).any() or (pair > 1).any():
            raise StimulusError(f"color_pair must be two RGB triplets in [0, 1], got {color_pair!r}")
        if aperture_deg is not None and not aperture_deg > 0:
            raise StimulusError(f"aperture_deg must be a positive radius in degrees, got {aperture_deg}")
        self.aperture_deg = aperture_deg
        self.color_pair = pair

        grid = np.meshgrid(
            np.arange(len(colors)), con, sfs, np.asarray(orientations_deg, float), np.asarray(phases, float),
            indexing="ij",
        )
        col, c, f, th, ph = (g.reshape(-1) for g in grid)
        color = np.asarray(colors, dtype=object)[col]
        meta = pd.DataFrame(
            {
                "stimulus_id": [f"grating-{i:05d}" for i in range(len(c))],
                "orientation_deg": th,
                "sf_cpd": f,
                "phase": ph,
                "color": color.astype(str),
                "contrast": c,
            }
        )
        self._set_metadata(meta)

    def _native_shape(self) -> tuple[int, int, int]:
        return (3, *self.image_size)  # type: ignore[misc]

    def coordinates_deg(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates (x (W,), y (H,)) in degrees, origin at the image centre, y up."""
        h, w = self.image_size  # type: ignore[misc]
        x = (np.arange(w) - (w - 1) / 2) / self.ppd
        y = ((h - 1) / 2 - np.arange(h)) / self.ppd
        return x, y

    def _render(self, idx: np.ndarray) -> torch.Tensor:
        m = self._meta.iloc[idx]
        x, y = self.coordinates_deg()
        th = np.deg2rad(m["orientation_deg"].to_numpy())[:, None, None]
        f = m["sf_cpd"].to_numpy()[:, None, None]
        ph = m["phase"].to_numpy()[:, None, None]
        c = m["contrast"].to_numpy()[:, None, None]
        # broadcasting (B,1,1) against (1,1,W) and (1,H,1): the whole batch in one expression
        arg = 2 * np.pi * f * (x[None, None, :] * np.cos(th) + y[None, :, None] * np.sin(th)) + ph
        lum = 0.5 + 0.5 * c * np.sin(arg)  # (B, H, W)
        if self.aperture_deg is not None:
            outside = np.hypot(x[None, :], y[:, None]) > self.aperture_deg
            lum = np.where(outside[None], 0.5, lum)
        lum = torch.from_numpy(lum.astype(np.float32))[:, None]  # (B, 1, H, W)
        is_color = torch.as_tensor(np.array(m["color"] == "color")).view(-1, 1, 1, 1)
        ca, cb = (torch.from_numpy(v).view(1, 3, 1, 1) for v in self.color_pair)
        colored = lum * ca + (1 - lum) * cb
        return torch.where(is_color, colored, lum.expand(-1, 3, -1, -1))


def gratings(
    orientations_deg: Sequence[float] = TDANN_ORIENTATIONS_DEG,
    sfs_cpd: Sequence[float] = TDANN_SF_CPD,
    phases: Sequence[float] = TDANN_PHASES,
    **kwargs,
) -> Gratings:
    """Sinusoidal gratings; see :class:`Gratings`. Defaults: TDANN grid, black-and-white only (320)."""
    return Gratings(orientations_deg, sfs_cpd, phases, **kwargs)


def tdann_gratings(image_size: int = 224, fov_deg: float = 8.2, **kwargs) -> Gratings:
    """The TDANN set: 8 orientations × 8 SFs × 5 phases × {bw, color} = 640 gratings at full contrast."""
    kwargs.setdefault("colors", ("bw", "color"))
    return Gratings(image_size=image_size, fov_deg=fov_deg, **kwargs)
