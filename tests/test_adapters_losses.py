"""Spatial losses of the adapters vs slow double-loop references and hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from cortexsim.adapters.channel import channel_topographic_loss, inverse_distance
from cortexsim.adapters.similarity import activation_similarity_loss, grid_pairs, weight_similarity_loss
from cortexsim.adapters.tdann import neighbourhood_table, spatial_correlation_loss
from cortexsim.layout import grid2d, square_grid

RTOL = 1e-5


def _triu_flat(k: int) -> torch.Tensor:
    iu, ju = np.triu_indices(k, 1)
    return torch.as_tensor(iu * k + ju)


# --------------------------------------------------------------------------- slow references


def ref_tdann(features: np.ndarray, positions: np.ndarray, rows: np.ndarray, variant: str) -> float:
    """Per neighbourhood: loop over pairs i < j, Pearson of responses vs 1/(d+1)."""
    losses = []
    for row in rows:
        r, t = [], []
        for a in range(len(row)):
            for b in range(a + 1, len(row)):
                i, j = row[a], row[b]
                r.append(stats.pearsonr(features[:, i], features[:, j])[0])
                t.append(1.0 / (math.dist(positions[i], positions[j]) + 1.0))
        if variant == "rel":
            losses.append((1.0 - stats.pearsonr(r, t)[0]) / 2.0)
        else:
            losses.append(np.mean(np.abs(np.array(r) - np.array(t))))
    return float(np.mean(losses))


def ref_channel(y: np.ndarray, positions: np.ndarray) -> float:
    """Poli et al. eq. (1)–(2) with explicit loops over the batch and channel pairs."""
    n, c = y.shape[:2]
    total = 0.0
    for s in range(n):
        acc = 0.0
        for i in range(c):
            for j in range(i + 1, c):
                a, b = y[s, i].ravel(), y[s, j].ravel()
                norms = np.linalg.norm(a) * np.linalg.norm(b)
                cos = float(a @ b) / norms if norms > 0 else 0.0  # a dead channel is orthogonal to all
                acc += (cos - 1.0 / (math.dist(positions[i], positions[j]) + 1.0)) ** 2
        total += acc * 2.0 / (c * (c - 1))
    return total / n


def ref_neighbours(positions: np.ndarray, radius: float) -> list[tuple[int, int]]:
    return [
        (i, j)
        for i in range(len(positions))
        for j in range(i + 1, len(positions))
        if math.dist(positions[i], positions[j]) <= radius + 1e-9
    ]


def ref_ws(w: np.ndarray, positions: np.ndarray, metric: str) -> float:
    vals = []
    for i, j in ref_neighbours(positions, math.sqrt(2)):
        if metric == "euclidean":
            vals.append(np.linalg.norm(w[i] - w[j]))
        elif metric == "sqeuclidean":
            vals.append(np.sum((w[i] - w[j]) ** 2))
        else:
            vals.append(1 - w[i] @ w[j] / (np.linalg.norm(w[i]) * np.linalg.norm(w[j])))
    return float(np.mean(vals))


def ref_as(a: np.ndarray, positions: np.ndarray) -> float:
    return float(np.mean([1 - stats.pearsonr(a[:, i], a[:, j])[0] for i, j in ref_neighbours(positions, math.sqrt(2))]))


# --------------------------------------------------------------------------- TDANN


@pytest.mark.parametrize("variant", ["rel", "abs"])
def test_tdann_loss_matches_double_loop(variant):
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(16, 30))
    pos = rng.uniform(0, 3, size=(30, 2))
    rows = np.sort(np.stack([rng.choice(30, 7, replace=False) for _ in range(4)]), axis=1)
    got = spatial_correlation_loss(
        torch.tensor(feats, dtype=torch.float32), torch.tensor(pos, dtype=torch.float32), torch.as_tensor(rows), _triu_flat(7), variant
    )
    assert got.item() == pytest.approx(ref_tdann(feats, pos, rows, variant), rel=RTOL)


def test_tdann_hand_values_three_units():
    # u0 = (1,2,3), u1 = 2·u0 (r01 = 1), u2 = (3,2,1) (r02 = r12 = −1); positions (0,0), (1,0), (0,1):
    # t = 1/(d+1) = (1/2, 1/2, √2−1). r − r̄ ∝ (2,−1,−1), t − t̄ ∝ (1,1,−2) → Pearson = 3/6 = 1/2.
    feats = torch.tensor([[1.0, 2.0, 3.0], [2.0, 4.0, 2.0], [3.0, 6.0, 1.0]])
    pos = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    rows = torch.tensor([[0, 1, 2]])
    rel = spatial_correlation_loss(feats, pos, rows, _triu_flat(3), "rel")
    assert rel.item() == pytest.approx(0.25, rel=RTOL)  # (1 − 1/2) / 2
    ab = spatial_correlation_loss(feats, pos, rows, _triu_flat(3), "abs")
    # |1 − 1/2| + |−1 − 1/2| + |−1 − (√2 − 1)| = 1/2 + 3/2 + √2
    assert ab.item() == pytest.approx((2 + math.sqrt(2)) / 3, rel=RTOL)


def test_tdann_perfectly_aligned_neighbourhood_has_zero_loss():
    # responses built so that corr(u_i, u_j) decreases with distance exactly like 1/(d+1) is impossible in
    # general, but identical units at distance 0 give r = t = 1 → SL_Abs = 0.
    feats = torch.randn(10, 1).repeat(1, 4)
    pos = torch.zeros(4, 2)
    assert spatial_correlation_loss(feats, pos, torch.tensor([[0, 1, 2, 3]]), _triu_flat(4), "abs").item() == pytest.approx(0, abs=1e-6)


def test_neighbourhood_table_on_a_line():
    # cortexsim's disc scheme. 100 units 1 mm apart on a line, width 10.5 mm: an interior disc holds 11 units,
    # the 10 end centres hold 6..10; the 5th percentile of the counts is 8, so K = 8 and the 4 centres with
    # < 8 units are dropped.
    pos = np.stack([np.arange(100.0), np.zeros(100)], axis=1)
    kw = dict(shape="disc", min_units=3, seed=1)
    table = neighbourhood_table(pos, 10.5, max_units=500, n_rows=100, **kw)
    assert table.shape == (96, 8)
    assert (np.diff(table, axis=1) > 0).all()  # sorted, no repeats
    assert (table.max(axis=1) - table.min(axis=1) <= 10).all()  # inside one disc of diameter 10.5
    capped = neighbourhood_table(pos, 10.5, max_units=5, n_rows=100, **kw)
    assert capped.shape == (100, 5)


# --------------------------------------------------------------------------- channel (Poli et al.)


@pytest.mark.parametrize("shape", [(3, 6, 4, 5), (4, 12, 2, 2), (2, 9, 3, 3)])  # HW > C, HW < C, HW = C
def test_channel_loss_matches_double_loop(shape):
    rng = np.random.default_rng(1)
    y = rng.normal(size=shape)
    y[0, 1] = 0.0  # a dead channel: cosine 0 with every other
    pos = grid2d(shape[1])
    got = channel_topographic_loss(torch.tensor(y, dtype=torch.float32), torch.as_tensor(inverse_distance(pos)))
    assert got.item() == pytest.approx(ref_channel(y, pos), rel=RTOL)


def test_channel_loss_gradient_matches_the_direct_pairwise_form():
    # The factored form (no (N, C, C) tensor) must give the gradient of the plain formula.
    rng = np.random.default_rng(5)
    pos = grid2d(16)
    invd = torch.as_tensor(inverse_distance(pos))
    for hw in (2, 5):  # HW < C and HW > C
        y = torch.tensor(rng.normal(size=(3, 16, hw, hw)), dtype=torch.float64, requires_grad=True)
        channel_topographic_loss(y, invd).backward()
        fast = y.grad.clone()
        y.grad = None
        f = y.flatten(2) / y.flatten(2).norm(dim=2, keepdim=True)
        s = f @ f.transpose(1, 2)
        iu = torch.triu_indices(16, 16, 1)
        ((s - invd.double())[:, iu[0], iu[1]].square().mean(1)).mean().backward()
        torch.testing.assert_close(fast, y.grad, rtol=1e-4, atol=1e-7)


def test_channel_hand_values_three_channels():
    # channels (1,0), (0,1), (1,1): cos = 0, 1/√2, 1/√2; the reference grid2d(3) (N = 2 points per axis over
    # [0, 1]) puts them at (0,0), (1,0), (0,1): 1/(d+1) = 1/2, 1/2, 1/(1+√2). Loss = mean of the squared gaps.
    y = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]], [[1.0, 1.0]]]])
    got = channel_topographic_loss(y, torch.as_tensor(inverse_distance(grid2d(3))))
    c = 1 / math.sqrt(2)
    want = ((0 - 1 / 2) ** 2 + (c - 1 / 2) ** 2 + (c - 1 / (1 + math.sqrt(2))) ** 2) / 3
    assert want == pytest.approx(0.12622655, rel=1e-6)
    assert got.item() == pytest.approx(want, rel=RTOL)
    # cortexsim's earlier grid (spacing 1/N: (0,0), (.5,0), (0,.5)): 1/(d+1) = 2/3, 2/3, 1/(1+√.5)
    old = channel_topographic_loss(y, torch.as_tensor(inverse_distance(grid2d(3, variant="cortexsim"))))
    want_old = ((0 - 2 / 3) ** 2 + (c - 2 / 3) ** 2 + (c - 1 / (1 + math.sqrt(0.5))) ** 2) / 3
    assert old.item() == pytest.approx(want_old, rel=RTOL) and want_old == pytest.approx(0.15359949, rel=1e-6)


# --------------------------------------------------------------------------- Truong–Hasson


def test_grid_pairs_counts():
    pos = square_grid(121)
    assert len(grid_pairs(pos, neighbourhood="von_neumann")) == 2 * 11 * 10  # 220 edges
    assert len(grid_pairs(pos, neighbourhood="moore")) == 2 * 11 * 10 + 2 * 10 * 10  # + 200 diagonals
    assert [tuple(p) for p in grid_pairs(pos)] == ref_neighbours(pos, math.sqrt(2))


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
def test_ws_loss_matches_double_loop(metric):
    rng = np.random.default_rng(2)
    w = rng.normal(size=(25, 7))
    pos = square_grid(25)
    got = weight_similarity_loss(torch.tensor(w, dtype=torch.float32), torch.as_tensor(grid_pairs(pos)), metric)
    assert got.item() == pytest.approx(ref_ws(w, pos, metric), rel=RTOL)


def test_ws_hand_values_2x2():
    pos = square_grid(4)  # all 6 pairs are Moore neighbours; 4 of them von Neumann
    w = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0], [3.0, 4.0]])  # |w0 − w1| = 5, w0 = w2, w1 = w3
    moore, vn = torch.as_tensor(grid_pairs(pos)), torch.as_tensor(grid_pairs(pos, neighbourhood="von_neumann"))
    assert weight_similarity_loss(w, moore).item() == pytest.approx(20 / 6, rel=RTOL)  # 5,0,5,5,0,5
    assert weight_similarity_loss(w, moore, "sqeuclidean").item() == pytest.approx(100 / 6, rel=RTOL)
    assert weight_similarity_loss(w, vn).item() == pytest.approx(2.5, rel=RTOL)  # (0,1),(0,2),(1,3),(2,3)
    wc = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    # 1 − cos over (0,1),(0,2),(0,3),(1,2),(1,3),(2,3) = 1, 0, 1−1/√2, 1, 1−1/√2, 1−1/√2
    assert weight_similarity_loss(wc, moore, "cosine").item() == pytest.approx((2 + 3 * (1 - 1 / math.sqrt(2))) / 6, rel=RTOL)


def test_as_loss_matches_double_loop():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(12, 16))
    pos = square_grid(16)
    got = activation_similarity_loss(torch.tensor(a, dtype=torch.float32), torch.as_tensor(grid_pairs(pos)))
    assert got.item() == pytest.approx(ref_as(a, pos), rel=RTOL)


def test_as_hand_values_2x2():
    # a0 = (1,2,3), a1 = 2·a0, a2 = (3,2,1), a3 = (1,3,2): von Neumann pairs r01 = 1, r02 = −1,
    # r13 = 1/2, r23 = −1/2 → mean(1 − r) = (0 + 2 + 1/2 + 3/2) / 4 = 1.
    a = torch.tensor([[1.0, 2.0, 3.0, 1.0], [2.0, 4.0, 2.0, 3.0], [3.0, 6.0, 1.0, 2.0]])
    vn = torch.as_tensor(grid_pairs(square_grid(4), neighbourhood="von_neumann"))
    assert activation_similarity_loss(a, vn).item() == pytest.approx(1.0, rel=RTOL)


def test_dead_unit_gives_finite_correlation_loss():
    a = torch.randn(8, 4)
    a[:, 2] = 0.0  # a ReLU unit that never fires: r = 0 with everyone, not NaN
    vn = torch.as_tensor(grid_pairs(square_grid(4), neighbourhood="von_neumann"))
    assert torch.isfinite(activation_similarity_loss(a, vn))


def test_losses_stay_float32_under_bf16_autocast():
    rng = np.random.default_rng(4)
    y = torch.tensor(rng.normal(size=(2, 32, 6, 6)), dtype=torch.float32)
    invd = torch.as_tensor(inverse_distance(grid2d(32)))
    a = torch.tensor(rng.normal(size=(16, 25)), dtype=torch.float32)
    pairs = torch.as_tensor(grid_pairs(square_grid(25)))
    plain = (channel_topographic_loss(y, invd), activation_similarity_loss(a, pairs))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = (channel_topographic_loss(y, invd), activation_similarity_loss(a, pairs))
    for p, m in zip(plain, mixed):
        assert m.dtype == torch.float32
        assert m.item() == pytest.approx(p.item(), rel=1e-6)
