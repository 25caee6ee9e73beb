"""Corruptions: white-noise std, pink 1/f spectrum, exact salt-and-pepper fraction, determinism, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cortexsim import stimuli
from cortexsim.errors import StimulusError


def _grey(n=4, size=64):
    """Zero-contrast gratings: constant 0.5 images, so noise = output - 0.5 (no clipping at small levels)."""
    return stimuli.gratings([0], [0.1], np.linspace(0, 1, n), contrasts=0.0, image_size=size, fov_deg=4)


def _loglog_slopes(noise: np.ndarray) -> tuple[float, float]:
    """Slopes of log radially averaged amplitude and power vs log |f| (1 < |f| < N/2 cycles/image)."""
    n = noise.shape[-1]
    amp = np.abs(np.fft.fft2(noise)).reshape(-1, n, n)
    f = np.fft.fftfreq(n) * n
    r = np.hypot(f[None, :], f[:, None])
    rbin = np.rint(r).astype(int)
    keep = (rbin >= 2) & (rbin <= n // 2 - 2)
    radii = np.unique(rbin[keep])
    a = np.array([amp[:, rbin == k].mean() for k in radii])
    p = np.array([(amp[:, rbin == k] ** 2).mean() for k in radii])
    return np.polyfit(np.log(radii), np.log(a), 1)[0], np.polyfit(np.log(radii), np.log(p), 1)[0]


def test_pink_noise_has_one_over_f_amplitude_spectrum():
    z = stimuli.pink_noise(0, np.arange(6), (1, 64, 64))
    assert z.shape == (6, 1, 64, 64)
    np.testing.assert_allclose(z.std(axis=(-2, -1)), 1.0, rtol=1e-9)
    a_slope, p_slope = _loglog_slopes(z)
    assert a_slope == pytest.approx(-1.0, abs=0.1)  # amplitude ~ 1/f
    assert p_slope == pytest.approx(-2.0, abs=0.2)  # power ~ 1/f^2
    # white noise for contrast: flat spectrum
    white = stimuli.corrupt(_grey(), "white", [0.05], seed=0).tensor().numpy() - 0.5
    assert _loglog_slopes(white)[0] == pytest.approx(0.0, abs=0.1)


def test_pink_corruption_through_a_set():
    c = stimuli.corrupt(_grey(), "pink", [0.05], seed=3)
    noise = c.tensor().numpy().astype(np.float64) - 0.5
    np.testing.assert_allclose(noise.std(axis=(-2, -1)), 0.05, rtol=1e-3)  # level = pixel std
    assert _loglog_slopes(noise)[0] == pytest.approx(-1.0, abs=0.1)


def test_white_noise_level_is_the_std_and_shared_across_levels():
    c = stimuli.corrupt(_grey(n=3), "white", [0.01, 0.05], seed=1)
    x = c.tensor().numpy().astype(np.float64) - 0.5
    assert x[:3].std() == pytest.approx(0.01, rel=0.03)
    assert x[3:].std() == pytest.approx(0.05, rel=0.03)
    np.testing.assert_allclose(x[3:], 5 * x[:3], atol=1e-5)  # common random numbers across levels


@pytest.mark.parametrize("level", stimuli.TRUONG_HASSON_LEVELS)
def test_salt_and_pepper_changes_the_requested_fraction(level):
    c = stimuli.corrupt(_grey(n=3, size=40), "salt-and-pepper", [level], seed=2)
    x = c.tensor()
    changed = (x != 0.5).any(dim=1)  # pixel locations changed (all channels together)
    assert torch.all(changed.sum(dim=(1, 2)) == round(level * 40 * 40))
    vals = x.permute(0, 2, 3, 1)[changed]
    assert set(vals.unique().tolist()) == {0.0, 1.0}
    assert torch.all(vals.min(1).values == vals.max(1).values)  # same value in every channel
    assert 0.3 < vals[:, 0].mean() < 0.7  # salt and pepper about equally often


def test_metadata_order_and_batch_independence():
    g = stimuli.gratings([0, 90], [1.0], [0.0], image_size=16, fov_deg=4)
    c = stimuli.corrupt(g, ["white", "sp"], [0.1, 0.2], seed=5)
    m = c.metadata
    assert len(c) == 8 and m["stimulus_id"].is_unique
    assert m["noise"].tolist() == ["white"] * 4 + ["salt_pepper"] * 4
    assert m["noise_level"].tolist() == [0.1, 0.1, 0.2, 0.2] * 2
    assert m["orientation_deg"].tolist() == [0, 90] * 4
    assert m["stimulus_id"][0] == "grating-00000|white-0.1"
    whole = c.tensor()
    assert torch.equal(c[6], whole[6])
    assert torch.equal(torch.cat(list(c.batches(3))), whole)
    again = stimuli.corrupt(g, ["white", "sp"], [0.1, 0.2], seed=5).tensor()
    other = stimuli.corrupt(g, ["white", "sp"], [0.1, 0.2], seed=6).tensor()
    assert torch.equal(whole, again) and not torch.equal(whole, other)


def test_corruption_errors():
    g = _grey(n=1, size=8)
    with pytest.raises(StimulusError, match="unknown noise kind 'blue'"):
        stimuli.corrupt(g, "blue", [0.1])
    with pytest.raises(StimulusError, match="levels must be >= 0"):
        stimuli.corrupt(g, "white", [-0.1])
    with pytest.raises(StimulusError, match="fraction of pixels"):
        stimuli.corrupt(g, "salt_pepper", [1.5])
    with pytest.raises(StimulusError, match="needs a StimulusSet"):
        stimuli.corrupt(torch.zeros(1, 3, 8, 8), "white", [0.1])
