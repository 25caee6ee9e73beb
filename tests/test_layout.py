"""Layouts: counts, bounds, and the neighbour structure each paper describes."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist

from cortexsim import layout
from cortexsim.errors import LayoutError


def nn_dist(pos):
    d, _ = cKDTree(pos).query(pos, k=2)
    return d[:, 1]


def test_grid2d_matches_poli_formula():
    pos = layout.grid2d(10)  # N = ceil(sqrt(10)) = 4
    assert pos.shape == (10, 2)
    # channel i (1-based 6 -> i-1 = 5 = 1*4 + 1) sits at (r/N, q/N) = (1/4, 1/4)
    np.testing.assert_allclose(pos[5], [0.25, 0.25])
    np.testing.assert_allclose(pos[3], [0.75, 0.0])
    full = layout.grid2d(256)
    assert full.min() == 0 and full.max() == pytest.approx(15 / 16)
    np.testing.assert_allclose(nn_dist(full), 1 / 16)
    # interior units have exactly 4 neighbours at one grid step
    d = cdist(full, full)
    counts = (np.isclose(d, 1 / 16)).sum(axis=1)
    assert sorted(set(counts)) == [2, 3, 4] and (counts == 4).sum() == 14 * 14


def test_grid2d_scale():
    np.testing.assert_allclose(layout.grid2d(9, scale_mm=3.0), layout.grid2d(9) * 3.0)


def test_circle_neighbours_are_consecutive_channels():
    n = 64
    pos = layout.circle(n)
    np.testing.assert_allclose(np.linalg.norm(pos, axis=1), 1.0)
    np.testing.assert_allclose(pos[-1], [1.0, 0.0], atol=1e-12)  # i = n -> angle 2π
    d = cdist(pos, pos)
    np.fill_diagonal(d, np.inf)
    nearest = np.sort(np.argsort(d, axis=1)[:, :2], axis=1)
    expected = np.sort(np.stack([(np.arange(n) - 1) % n, (np.arange(n) + 1) % n], axis=1), axis=1)
    np.testing.assert_array_equal(nearest, expected)
    np.testing.assert_allclose(nn_dist(pos), 2 * np.sin(np.pi / n))


def test_grid3d_six_neighbours():
    pos = layout.grid3d(27)
    assert pos.shape == (27, 3)
    d = cdist(pos, pos)
    counts = np.isclose(d, 1 / 3).sum(axis=1)
    assert counts[13] == 6  # the centre of the 3x3x3 cube
    assert counts.min() == 3  # corners
    assert len(np.unique(pos, axis=0)) == 27


def test_sphere_even_spread():
    pos = layout.sphere(256)
    np.testing.assert_allclose(np.linalg.norm(pos, axis=1), 1.0)
    nn = nn_dist(pos)
    assert nn.max() / nn.min() < 1.6  # roughly uniform (random points give > 10)
    np.testing.assert_allclose(pos.mean(axis=0), 0, atol=0.02)


@pytest.mark.parametrize("fn, dim, per_shell", [(layout.nested_grid, 2, 8), (layout.nested3d, 3, 20)])
def test_nested_grids_denser_in_centre(fn, dim, per_shell):
    n = 1 + 4 * per_shell
    pos = fn(n)
    assert pos.shape == (n, dim)
    assert pos.min() >= 0 and pos.max() <= 1
    np.testing.assert_allclose(pos[0], 0.5)
    radius = np.abs(pos - 0.5).max(axis=1)  # Chebyshev radius = shell half-width
    np.testing.assert_allclose(np.unique(radius), [0, 0.125, 0.25, 0.375, 0.5])
    assert all((np.isclose(radius, r)).sum() == per_shell for r in [0.125, 0.25, 0.375, 0.5])
    # density: inner half-width holds half the shells but only 1/2^dim of the volume
    inner = (radius <= 0.25).mean()
    assert inner > 0.4 and 0.5**dim < 0.3


def test_square_grid_truong_hasson():
    pos = layout.square_grid(121, spacing_mm=2.0)
    d = cdist(pos, pos)
    counts = np.isclose(d, 2.0).sum(axis=1)
    assert (counts == 4).sum() == 81 and pos.max() == 20.0
    p = layout.place("square_grid", (121,))
    assert p.row.max() == 10 and p.col.max() == 10 and p.level == "channel"


def test_reset_tiling_tiles():
    row, col, sub = layout.reset_tiling_rowcol(1, 32)
    np.testing.assert_array_equal(row, np.arange(1024) // 32)
    row, col, sub = layout.reset_tiling_rowcol(2, 32)
    # sub-network 1 (top-right) owns rows 0-15, cols 16-31; its first unit is at (0, 16)
    k = np.flatnonzero(sub == 1)
    assert (row[k[0]], col[k[0]]) == (0, 16)
    assert set(row[k]) == set(range(16)) and set(col[k]) == set(range(16, 32))
    row, col, sub = layout.reset_tiling_rowcol(8, 32)
    assert len(set(zip(row, col))) == 1024  # a bijection onto the grid
    assert np.all(row // 4 * 8 + col // 4 == sub)
    with pytest.raises(LayoutError, match="divisible"):
        layout.reset_tiling_rowcol(3, 32)


def test_retinotopic_preserves_retinotopy_and_is_seeded():
    shape = (8, 4, 5)
    pos = layout.retinotopic(shape, size_mm=20.0, seed=3)
    assert pos.shape == (160, 2)
    c, h, w = np.meshgrid(*(np.arange(s) for s in shape), indexing="ij")
    # each unit lies inside the patch of its feature-map position
    np.testing.assert_array_equal(np.floor(pos[:, 0] / (20.0 / 5)), w.ravel())
    np.testing.assert_array_equal(np.floor(pos[:, 1] / (20.0 / 4)), h.ravel())
    np.testing.assert_array_equal(pos, layout.retinotopic(shape, size_mm=20.0, seed=3))
    assert not np.array_equal(pos, layout.retinotopic(shape, size_mm=20.0, seed=4))
    centred = layout.retinotopic(shape, size_mm=20.0, jitter=0)
    np.testing.assert_allclose(centred[:, 0], (w.ravel() + 0.5) * 4.0)


def test_place_levels_and_errors():
    p = layout.place("retinotopic", (4, 2, 2), size_mm=1.0)
    assert p.level == "unit" and p.n_units == 16 and p.channel.max() == 3 and p.row.max() == 1
    q = layout.place("grid3d", (64, 7, 7))
    assert q.level == "channel" and q.positions.shape == (64, 3) and (q.row == -1).all()
    with pytest.raises(LayoutError, match="unknown layout 'hexagon'"):
        layout.place("hexagon", (4,))
    with pytest.raises(LayoutError, match="dense layer"):
        layout.place("retinotopic", (10,))
    with pytest.raises(LayoutError, match="positive integer"):
        layout.grid2d(0)
    with pytest.raises(LayoutError, match="grid"):
        layout.place("reset", (1000,))
