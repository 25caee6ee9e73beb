"""Number codes (similarity structure) and digit images (labels, balance, rendering)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cortexsim import stimuli
from cortexsim.errors import StimulusError


def test_number_codes_shape_sparsity_and_similarity_structure():
    c = stimuli.number_codes(9)
    assert c.dims == ("numerosity", "code_unit") and c.shape == (9, 100)
    assert c["numerosity"].values.tolist() == list(range(1, 10))
    v = c.values.astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-6)
    assert (v >= 0).all() and 0.3 < (v == 0).mean() < 0.9  # sparse but overlapping
    s = v @ v.T
    for i in range(9):  # similarity falls with numerical distance on both sides
        assert np.all(np.diff(s[i, i:]) <= 1e-9) and np.all(np.diff(s[i, : i + 1]) >= -1e-9)
    succ = np.diag(s, 1)
    assert np.all(np.diff(succ) > 0)  # larger overlap between successive codes as numbers grow
    assert s[0, 1] < 0.9 and s[0, 8] < 0.05  # non-degenerate, not one-hot


def test_number_codes_match_the_documented_formula():
    c = stimuli.number_codes(5, dim=20, start=0, sigma=0.3, threshold=0.2, seed=7)
    u = np.log1p(np.arange(6))
    mu = np.linspace(u[0] - 0.6, u[-1] + 0.6, 20)
    gain = np.random.default_rng(7).lognormal(0, 0.25, 20)
    t = np.exp(-((u[:, None] - mu) ** 2) / (2 * 0.09))
    ref = np.where(t >= 0.2, t, 0) * gain
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    np.testing.assert_allclose(c.values, ref, rtol=1e-5)
    with pytest.raises(StimulusError, match="start <= n_max"):
        stimuli.number_codes(0)


def test_rendered_digits_balanced_black_on_white():
    d = stimuli.digits(5, image_size=32, seed=0)
    m = d.metadata
    assert m["numerosity"].value_counts().to_dict() == {k: 5 for k in range(10)}
    x = d.tensor()
    assert x.shape == (50, 3, 32, 32)
    ink = 1 - x[:, 0]
    assert (x[:, :, 0, :] > 0.99).all()  # white paper at the top border: no clipped glyphs there
    assert (ink.sum((1, 2)) > 10).all()  # every image has a glyph
    assert set(m["dx_px"].unique()) <= set(range(-3, 3)) and set(m["dy_px"].unique()) <= set(range(-6, 6))


def test_rendered_digit_is_shifted_by_dx():
    """Two renderings of the same digit/font/size differ only by the shift: ink centroids differ by dx, dy."""
    d = stimuli.digits(40, values=[1], fonts=["DejaVuSans"], font_px=(18, 18), image_size=32, seed=0)
    m = d.metadata
    ink = (1 - d.tensor()[:, 0]).numpy()
    yy, xx = np.mgrid[:32, :32]
    cx = (ink * xx).sum((1, 2)) / ink.sum((1, 2))
    cy = (ink * yy).sum((1, 2)) / ink.sum((1, 2))
    np.testing.assert_allclose(cx - cx.mean(), m["dx_px"] - m["dx_px"].mean(), atol=0.15)
    np.testing.assert_allclose(cy - cy.mean(), m["dy_px"] - m["dy_px"].mean(), atol=0.15)


def test_load_digits_source_matches_sklearn_labels():
    from sklearn.datasets import load_digits

    d = stimuli.digits(3, source="load_digits", image_size=12, channels=1)
    m = d.metadata
    ref = load_digits()
    assert (ref.target[m["sklearn_index"]] == m["numerosity"]).all()
    # at 12 px the crop is the padded 8x8 image sampled 1:1
    expect = 1 - np.pad(ref.images[m["sklearn_index"][0]] / 16.0, 2)
    np.testing.assert_allclose(d[0][0].numpy(), expect, atol=1e-5)
    both = stimuli.digits(2, source="both", image_size=16)
    assert both.metadata.groupby(["source", "numerosity"]).size().eq(2).all()


def test_digit_errors():
    with pytest.raises(StimulusError, match="values must be digits"):
        stimuli.digits(values=[12])
    with pytest.raises(StimulusError, match="source must be"):
        stimuli.digits(source="mnist")
    with pytest.raises(StimulusError, match="unknown font"):
        stimuli.digits(fonts=["Arial"])
