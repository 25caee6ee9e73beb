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


def test_grid2d_matches_the_reference_hypercube():
    # bootphon hypercube(10, 2): N = ceil(sqrt(10)) = 4 points per axis over [0, 1] inclusive (step 1/3);
    # channel 5 = row 1, column 1 -> (1/3, 1/3); channel 3 = row 0, column 3 -> (1, 0).
    pos = layout.grid2d(10)
    assert pos.shape == (10, 2)
    np.testing.assert_allclose(pos[5], [1 / 3, 1 / 3])
    np.testing.assert_allclose(pos[3], [1.0, 0.0])
    full = layout.grid2d(256)
    assert full.min() == 0 and full.max() == pytest.approx(1.0)
    np.testing.assert_allclose(nn_dist(full), 1 / 15)
    d = cdist(full, full)
    counts = (np.isclose(d, 1 / 15)).sum(axis=1)
    assert sorted(set(counts)) == [2, 3, 4] and (counts == 4).sum() == 14 * 14
    # 512 channels: N = ceil(22.6) = 23 columns, the last row holds 512 - 22·23 = 6 channels
    big = layout.grid2d(512)
    assert big[:, 0].max() == 1.0 and big[-1, 1] == pytest.approx(22 / 22) and big[-1, 0] == pytest.approx(5 / 22)


def test_grid2d_cortexsim_variant_keeps_spacing_1_over_n():
    pos = layout.grid2d(10, variant="cortexsim")
    np.testing.assert_allclose(pos[5], [0.25, 0.25])
    full = layout.grid2d(256, variant="cortexsim")
    assert full.max() == pytest.approx(15 / 16)
    np.testing.assert_allclose(nn_dist(full), 1 / 16)
    with pytest.raises(LayoutError, match="variant must be one of"):
        layout.grid2d(4, variant="poli")


def test_grid2d_scale():
    np.testing.assert_allclose(layout.grid2d(9, scale_mm=3.0), layout.grid2d(9) * 3.0)


def test_circle_reference_radius_half_from_angle_zero():
    n = 64
    pos = layout.circle(n)
    np.testing.assert_allclose(np.linalg.norm(pos, axis=1), 0.5)
    np.testing.assert_allclose(pos[0], [0.5, 0.0], atol=1e-12)  # t = 0 -> angle 0
    np.testing.assert_allclose(pos[16], [0.0, 0.5], atol=1e-12)  # t = n/4 -> angle π/2
    d = cdist(pos, pos)
    np.fill_diagonal(d, np.inf)
    nearest = np.sort(np.argsort(d, axis=1)[:, :2], axis=1)
    expected = np.sort(np.stack([(np.arange(n) - 1) % n, (np.arange(n) + 1) % n], axis=1), axis=1)
    np.testing.assert_array_equal(nearest, expected)
    np.testing.assert_allclose(nn_dist(pos), 2 * 0.5 * np.sin(np.pi / n))
    old = layout.circle(n, variant="cortexsim")
    np.testing.assert_allclose(np.linalg.norm(old, axis=1), 1.0)
    np.testing.assert_allclose(old[-1], [1.0, 0.0], atol=1e-12)


def test_grid3d_reference_order_and_six_neighbours():
    # hypercube(27, 3) with meshgrid(indexing="xy"): channel m at ((m // 3) % 3, m // 9, m % 3) / 2
    pos = layout.grid3d(27)
    np.testing.assert_allclose(pos[1], [0, 0, 0.5])
    np.testing.assert_allclose(pos[3], [0.5, 0, 0])
    np.testing.assert_allclose(pos[9], [0, 0.5, 0])
    np.testing.assert_allclose(pos[13], [0.5, 0.5, 0.5])
    d = cdist(pos, pos)
    counts = np.isclose(d, 0.5).sum(axis=1)
    assert counts[13] == 6 and counts.min() == 3
    assert len(np.unique(pos, axis=0)) == 27
    np.testing.assert_allclose(layout.grid3d(27, variant="cortexsim")[1], [1 / 3, 0, 0])


def test_sphere_reference_fibonacci_pole_to_pole():
    n = 256
    pos = layout.sphere(n)
    np.testing.assert_allclose(np.linalg.norm(pos, axis=1), 0.5)
    np.testing.assert_allclose(pos[0], [0, 0.5, 0], atol=1e-12)  # y = 1 at t = 0
    np.testing.assert_allclose(pos[-1], [0, -0.5, 0], atol=1e-12)  # y = -1 at t = n - 1
    np.testing.assert_allclose(np.diff(pos[:, 1]), -1.0 / (n - 1))  # 0.5 · 2 / (n - 1) per channel
    # consecutive channels turn by the golden angle π(3 - √5) about the y axis
    ang = np.arctan2(pos[:, 2], pos[:, 0])
    turn = np.mod(np.diff(ang[1:-1]), 2 * np.pi)
    np.testing.assert_allclose(turn, np.pi * (3 - np.sqrt(5)), atol=1e-9)
    nn = nn_dist(pos)
    assert nn.max() / nn.min() < 2.0  # roughly uniform (random points give > 10)
    old = layout.sphere(n, variant="cortexsim")
    np.testing.assert_allclose(np.linalg.norm(old, axis=1), 1.0)
    np.testing.assert_allclose(old.mean(axis=0), 0, atol=0.02)


def test_nested_grid_reference_from_the_unit_square_inwards():
    pos = layout.nested_grid(20)
    outer = [[0, 0], [0.5, 0], [1, 0], [0, 0.5], [1, 0.5], [0, 1], [0.5, 1], [1, 1]]  # vertices + edge midpoints
    np.testing.assert_allclose(pos[:8], outer)
    np.testing.assert_allclose(pos[8:16], 0.25 + 0.5 * np.array(outer))  # half as wide, same centre
    np.testing.assert_allclose(pos[16:], 0.375 + 0.25 * np.array(outer[:4]))
    # float32 like the reference: squares narrower than float32 resolution repeat positions from 195 on
    assert len(np.unique(layout.nested_grid(194), axis=0)) == 194
    assert len(np.unique(layout.nested_grid(195), axis=0)) == 194
    assert len(np.unique(layout.nested_grid(256), axis=0)) == 196  # the reference's 256-channel layout


def test_nested3d_reference_twenty_points_per_cube():
    pos = layout.nested3d(40)
    first = pos[:20]
    assert ((first == 0) | (first == 0.5) | (first == 1)).all()
    assert ((first == 0.5).sum(axis=1) <= 1).all() and len(np.unique(first, axis=0)) == 20  # 8 vertices + 12 midpoints
    np.testing.assert_allclose(first[8:12], [[0, 0, 0.5], [1, 0, 0.5], [0, 1, 0.5], [1, 1, 0.5]])  # middle layer
    np.testing.assert_allclose(pos[20:], 0.25 + 0.5 * first)
    assert len(np.unique(layout.nested3d(483), axis=0)) == 482
    assert len(np.unique(layout.nested3d(512), axis=0)) == 488


@pytest.mark.parametrize("fn, dim, per_shell", [(layout.nested_grid, 2, 8), (layout.nested3d, 3, 20)])
def test_nested_grids_cortexsim_variant_denser_in_centre(fn, dim, per_shell):
    n = 1 + 4 * per_shell
    pos = fn(n, variant="cortexsim")
    assert pos.shape == (n, dim)
    assert pos.min() >= 0 and pos.max() <= 1
    np.testing.assert_allclose(pos[0], 0.5)
    radius = np.abs(pos - 0.5).max(axis=1)  # Chebyshev radius = shell half-width
    np.testing.assert_allclose(np.unique(radius), [0, 0.125, 0.25, 0.375, 0.5])
    assert all((np.isclose(radius, r)).sum() == per_shell for r in [0.125, 0.25, 0.375, 0.5])
    inner = (radius <= 0.25).mean()  # the centre unit and 2 of the 4 shells
    assert inner == pytest.approx((1 + 2 * per_shell) / n)
    assert inner > 1.5 * 0.5**dim  # denser than a uniform grid, whose inner box holds 1/2^dim of the units


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
