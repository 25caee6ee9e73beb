"""Gratings: formula, FFT frequency/orientation, TDANN set, colour, aperture, parameter errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cortexsim import stimuli
from cortexsim.errors import StimulusError


def _fft_peak(img: np.ndarray, fov_deg: float, pad: int = 8) -> tuple[float, float]:
    """(sf in cycles/deg, wave-vector orientation in deg [0, 180)) of the strongest Fourier component."""
    n = img.shape[0]
    spec = np.abs(np.fft.fft2(img - img.mean(), s=(pad * n, pad * n)))
    r, c = np.unravel_index(np.argmax(spec), spec.shape)
    f = np.fft.fftfreq(pad * n) * n  # cycles per image
    kx, ky_up = f[c], -f[r]  # rows run down, the stimulus y axis runs up
    return float(np.hypot(kx, ky_up) / fov_deg), float(np.degrees(np.arctan2(ky_up, kx)) % 180)


@pytest.mark.parametrize(
    "ori,sf", [(0.0, 4.0), (90.0, 4.0), (45.0, 4 * np.sqrt(2)), (30.0, 3.1), (112.5, 5.5), (157.5, 2.0)]
)
def test_dominant_fft_frequency_and_orientation(ori, sf):
    fov = 2.0
    g = stimuli.gratings([ori], [sf], [0.3], image_size=64, fov_deg=fov)
    img = g[0][0].numpy().astype(np.float64)
    sf_hat, ori_hat = _fft_peak(img, fov)
    assert sf_hat == pytest.approx(sf, rel=0.03)
    assert min(abs(ori_hat - ori), 180 - abs(ori_hat - ori)) < 1.5


def test_formula_pixel_by_pixel():
    th, f, ph, c = 30.0, 1.3, 1.1, 0.6
    g = stimuli.gratings([th], [f], [ph], contrasts=c, image_size=(10, 16), fov_deg=4.0)
    ppd = 16 / 4.0
    x = (np.arange(16) - 7.5) / ppd
    y = (4.5 - np.arange(10)) / ppd
    t = np.radians(th)
    ref = 0.5 + 0.5 * c * np.sin(2 * np.pi * f * (x[None] * np.cos(t) + y[:, None] * np.sin(t)) + ph)
    out = g[0].numpy()
    assert out.shape == (3, 10, 16)
    for ch in range(3):
        np.testing.assert_allclose(out[ch], ref, atol=1e-6)


def test_tdann_set_and_metadata():
    g = stimuli.tdann_gratings(image_size=224, fov_deg=8.2)
    m = g.metadata
    assert len(g) == 640 and m["stimulus_id"].is_unique
    assert sorted(m["orientation_deg"].unique()) == [22.5 * k for k in range(8)]
    assert m["sf_cpd"].nunique() == 8 and m["phase"].nunique() == 5
    assert m["sf_cpd"].max() < (224 / 8.2) / 2  # below Nyquist
    assert m.groupby("color").size().to_dict() == {"bw": 320, "color": 320}
    assert {"orientation_deg", "sf_cpd", "phase", "color"} <= set(m.columns)
    x = g.load([0, 639])
    assert x.shape == (2, 3, 224, 224) and x.min() >= 0 and x.max() <= 1


def test_colour_gratings_mix_red_and_green():
    g = stimuli.gratings([0], [1.0], [0.0], colors=("bw", "color"), image_size=32, fov_deg=4)
    bw, col = g.tensor()
    lum = bw[0]
    assert torch.allclose(bw[0], bw[1]) and torch.allclose(bw[1], bw[2])
    assert torch.allclose(col[0], lum, atol=1e-6)  # red channel follows I
    assert torch.allclose(col[1], 1 - lum, atol=1e-6)  # green channel follows 1 - I
    assert torch.all(col[2] == 0)


def test_aperture_and_contrast_zero():
    g = stimuli.gratings([0], [2.0], [0.0], image_size=33, fov_deg=4, aperture_deg=1.0, contrasts=[0.0, 1.0])
    flat, full = g.tensor()[:, 0]
    assert torch.allclose(flat, torch.full_like(flat, 0.5))
    ppd = 33 / 4
    yy, xx = np.mgrid[:33, :33]
    outside = np.hypot(xx - 16, yy - 16) / ppd > 1.0
    assert torch.all(full[torch.from_numpy(outside)] == 0.5)
    assert full[torch.from_numpy(~outside)].std() > 0.2


def test_errors_name_the_parameter():
    with pytest.raises(StimulusError, match=r"sf_cpd .* Nyquist limit 16\.000"):
        stimuli.gratings([0], [16.0], [0], image_size=64, fov_deg=2)
    with pytest.raises(StimulusError, match="contrast must be in"):
        stimuli.gratings([0], [1.0], [0], contrasts=-0.1, image_size=16, fov_deg=2)
    with pytest.raises(StimulusError, match="contrast must be in"):
        stimuli.gratings([0], [1.0], [0], contrasts=1.5, image_size=16, fov_deg=2)
    with pytest.raises(StimulusError, match="fov_deg"):
        stimuli.gratings([0], [1.0], [0], image_size=16, fov_deg=0)
    with pytest.raises(StimulusError, match="color must be"):
        stimuli.gratings([0], [1.0], [0], colors=("blue",), image_size=16, fov_deg=2)
