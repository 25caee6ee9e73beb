"""Swap optimisation of positions: exact swap gains, and recovery of a scrambled smooth map."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from cortexsim.errors import LayoutError
from cortexsim.swapopt import local_correlation, swap_gains, swap_optimize


def test_swap_gains_match_brute_force():
    rng = np.random.default_rng(0)
    k = 5
    r = rng.normal(size=(20, k))
    c = np.corrcoef(r.T)
    p = rng.random((k, 2)) * 3
    d = np.linalg.norm(p[:, None] - p[None], axis=2)
    cost = lambda pos: (c * np.linalg.norm(pos[:, None] - pos[None], axis=2)).sum()  # noqa: E731
    gains = swap_gains(torch.tensor(c)[None], torch.tensor(d)[None])[0].numpy()
    for a, b in itertools.combinations(range(k), 2):
        q = p.copy()
        q[[a, b]] = q[[b, a]]
        assert gains[a, b] == pytest.approx(cost(q) - cost(p), rel=1e-9, abs=1e-9)


def smooth_sheet(side=16, n_stim=60, seed=0):
    """Units on a side×side grid whose tuning varies smoothly with true position."""
    rng = np.random.default_rng(seed)
    yy, xx = np.divmod(np.arange(side * side), side)
    true = np.stack([xx, yy], axis=1).astype(float)
    freqs = rng.normal(scale=0.25, size=(n_stim, 2))
    phase = rng.uniform(0, 2 * np.pi, n_stim)
    resp = np.cos(true @ freqs.T + phase).T + 0.1 * rng.normal(size=(n_stim, side * side))
    return resp, true


def test_swapopt_recovers_smoothness_of_a_scrambled_map():
    resp, true = smooth_sheet()
    pos0 = true[np.random.default_rng(1).permutation(len(true))]  # unit i sits at a random grid slot
    before = local_correlation(resp, pos0, radius_mm=1.5)
    ideal = local_correlation(resp, true, radius_mm=1.5)
    assert before < 0.35 and ideal > 0.9
    perm = swap_optimize(resp, pos0, neighbourhood=16, iterations=300, batch=32, seed=0, device="cpu")
    assert sorted(perm) == list(range(len(true)))  # a permutation of the slots
    after = local_correlation(resp, pos0[perm], radius_mm=1.5)
    assert after > before + 0.5 * (ideal - before)  # closes most of the gap to the planted layout


def test_swapopt_keeps_positions_set_and_is_seeded():
    resp, true = smooth_sheet(side=8)
    a = swap_optimize(resp, true, iterations=20, seed=3, device="cpu")
    b = swap_optimize(resp, true, iterations=20, seed=3, device="cpu")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.sort(true[a], axis=0), np.sort(true, axis=0))


def test_swapopt_bad_input():
    with pytest.raises(LayoutError, match="n_units=4"):
        swap_optimize(np.zeros((3, 5)), np.zeros((4, 2)))
    with pytest.raises(LayoutError, match="finite"):
        swap_optimize(np.full((3, 4), np.nan), np.zeros((4, 2)))
