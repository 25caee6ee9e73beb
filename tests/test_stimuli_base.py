"""StimulusSet protocol: indexing, batches, subset/concat, resizing, channels, normalisation, determinism."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from cortexsim import stimuli
from cortexsim.errors import StimulusError
from cortexsim.stimuli import counter_rng
from cortexsim.stimuli.base import StimulusSet


class Ramp(StimulusSet):
    """Tiny reference set: image i is the constant i / 10 (grey, 4×6)."""

    def __init__(self, n=7, **kw):
        super().__init__(**kw)
        self._set_metadata({"stimulus_id": [f"r{i}" for i in range(n)], "value": np.arange(n)})

    def _native_shape(self):
        return (1, 4, 6)

    def _render(self, idx):
        return torch.from_numpy(np.broadcast_to(idx[:, None, None, None] / 10.0, (len(idx), 1, 4, 6)).astype(np.float32))


def test_protocol_getitem_batches_and_metadata():
    s = Ramp()
    assert len(s) == 7 and s.shape == (1, 4, 6)
    assert s[3].shape == (1, 4, 6) and s[3].dtype == torch.float32
    assert torch.allclose(s[-1], torch.full((1, 4, 6), 0.6))
    bs = list(s.batches(3))
    assert [b.shape[0] for b in bs] == [3, 3, 1]
    assert torch.allclose(torch.cat(bs)[:, 0, 0, 0], torch.arange(7) / 10.0)
    assert [b.shape[0] for b in s.batches(2, start=2, stop=5)] == [2, 1]
    assert list(s.metadata.columns) == ["stimulus_id", "value"]
    with pytest.raises(IndexError, match="out of range"):
        s[7]
    with pytest.raises(StimulusError, match="batch_size"):
        next(s.batches(0))


def test_subset_slice_and_concat():
    s = Ramp()
    sub = s[[5, 1]]
    assert sub.metadata["stimulus_id"].tolist() == ["r5", "r1"]
    assert torch.allclose(sub.tensor()[:, 0, 0, 0], torch.tensor([0.5, 0.1]))
    sl = s[1:7:2]
    assert sl.metadata["value"].tolist() == [1, 3, 5]
    with pytest.raises(StimulusError, match="unique"):
        stimuli.concat(s, s)
    c = stimuli.concat(s, s[:2], prefixes=["a/", "b/"])
    assert len(c) == 9 and c.metadata["stimulus_id"].iloc[7] == "b/r0"
    assert torch.allclose(c.tensor()[:, 0, 0, 0], torch.tensor([0, 1, 2, 3, 4, 5, 6, 0, 1]) / 10.0)
    with pytest.raises(StimulusError, match="different image shapes"):
        stimuli.concat(s, Ramp(image_size=8), prefixes=["a", "b"])
    c2 = stimuli.concat([s, Ramp(image_size=8)], prefixes=["a", "b"], image_size=5, channels=3)
    assert c2.load([0, 8]).shape == (2, 3, 5, 5)


def test_channels_resize_and_normalize():
    s = Ramp(channels=3, image_size=(8, 12), normalize="imagenet")
    x01 = s.load01([2])
    assert x01.shape == (1, 3, 8, 12) and torch.allclose(x01, torch.full_like(x01, 0.2))  # constant stays constant
    x = s.load([2])
    mean = torch.tensor(stimuli.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(stimuli.IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(x, (0.2 - mean) / std, atol=1e-6)
    custom = Ramp(normalize=([0.5], [0.25]))
    assert torch.allclose(custom[4], torch.full((1, 4, 6), (0.4 - 0.5) / 0.25))
    with pytest.raises(StimulusError, match="normalize"):
        Ramp(normalize="cifar")
    with pytest.raises(StimulusError, match="channels"):
        Ramp(channels=2)


def test_rgb_to_grey_uses_bt601_luma():
    g = stimuli.gratings([0], [1.0], [np.pi / 2], colors=("color",), image_size=16, fov_deg=2, channels=1)
    ref = stimuli.gratings([0], [1.0], [np.pi / 2], colors=("color",), image_size=16, fov_deg=2).load01([0])[0]
    expected = 0.299 * ref[0] + 0.587 * ref[1] + 0.114 * ref[2]
    assert torch.allclose(g[0][0], expected, atol=1e-6)


def test_counter_rng_is_batch_independent_and_uniform():
    a = counter_rng.uniform(3, np.array([0, 1, 2, 3]), 0, 1000)
    b = counter_rng.uniform(3, np.array([2]), 0, 1000)
    assert np.array_equal(a[2], b[0])
    assert not np.array_equal(a[0], a[1])
    u = counter_rng.uniform(0, np.arange(4), 5, 50_000).ravel()
    from scipy import stats

    assert stats.kstest(u, "uniform").pvalue > 1e-3
    z = counter_rng.normal(0, np.arange(2), 1, 50_000).ravel()
    assert stats.kstest(z, "norm").pvalue > 1e-3
