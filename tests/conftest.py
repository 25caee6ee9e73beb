"""Shared fixtures: small Sheets and models, threads capped for the 2-core CI machine."""
from __future__ import annotations

import numpy as np
import pytest

try:
    import torch

    torch.set_num_threads(2)
except ImportError:  # pragma: no cover
    torch = None

import cortexsim as cx


@pytest.fixture
def small_sheet():
    """A 6-stimulus × 9-unit Sheet on a 3×3 grid with domain labels."""
    rng = np.random.default_rng(0)
    row, col = np.divmod(np.arange(9), 3)
    return cx.make_sheet(
        rng.normal(size=(6, 9)).astype(np.float32),
        x_mm=col * 1.0,
        y_mm=row * 1.0,
        area="IT",
        layer="layer4.1",
        row=row,
        col=col,
        stimuli={"domain": ["faces", "faces", "faces", "places", "places", "places"]},
        attrs={"model": "test"},
    )
