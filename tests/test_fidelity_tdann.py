"""TDANN defaults vs spacetorch (neuroailab/TDANN @80c585d), numbers derived from its constants and
algorithms by hand (issue 12)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cortexsim import layout
from cortexsim.adapters import get_method
from cortexsim.adapters.tdann import neighbourhood_table, neighbourhood_windows
from cortexsim.adapters.trainer import Trainer

# spacetorch.constants / models.positions: sheet and neighbourhood width per area (mm);
# save_retinotopic_positions.py: RF overlap 0.1 × (56 / map width) at 224 px
REFERENCE = {  # layer: (sheet, width, overlap)
    "layer1.0": (2.4, 0.0475, 0.1), "layer2.1": (36.75, 1.626, 0.2), "layer3.0": (35.0, 3.977, 0.4),
    "layer3.1": (22.4, 2.545, 0.4), "layer4.1": (70.0, 31.818, 0.8),
}


@pytest.fixture(scope="module")
def tdann():
    return get_method("tdann").build("resnet18", 10, seed=0)


def test_sheets_widths_overlap_and_jitter_are_spacetorchs(tdann):
    for layer, (sheet, width, overlap) in REFERENCE.items():
        p = tdann.placements[f"net.{layer}"].params
        assert (p["size_mm"], p["rf_overlap"], p["jitter_mm"]) == (sheet, overlap, 0.3), layer
        assert tdann.windows[layer].radius == pytest.approx(width / 2), layer
        assert tdann.window_params[layer]["n_rows"] == 20_000 and tdann.window_params[layer]["shape"] == "square"
    # the widths are TDANN's patch widths at 224 px: sheet / (n − n·o + o) with n = 56, 28, 14, 14, 7
    for (sheet, width, overlap), n in zip(REFERENCE.values(), (56, 28, 14, 14, 7)):
        assert sheet / (n - n * overlap + overlap) == pytest.approx(width, rel=1e-3)
    old = get_method("tdann").build("resnet18", 10, preset="cortexsim", layers=["layer2.0"], seed=0)
    assert old.placements["net.layer2.0"].params["size_mm"] == 35.0
    assert 2 * old.windows["layer2.0"].radius == pytest.approx(0.0455 * 35.0)  # 1.59 mm, where TDANN has 1.626


def test_retina_target_is_in_absolute_mm(tdann):
    # mean 1/(d + 1) of pairs in a neighbourhood: two uniform points in a square of side s are 0.5214·s apart
    # on average, so the 0.0475 mm retina square gives ≈ 1/(1 + 0.0248) = 0.976; cortexsim's earlier 0.198 mm
    # disc on a 10 mm sheet (mean distance 128 R / 45π = 0.0896 mm) gave ≈ 0.918.
    def mean_target(net, layer):
        i = net.layer_names.index(layer)
        rows = net.neighbourhoods(layer, torch.arange(200))
        pos = getattr(net, f"pos_{i}")[rows]
        d = torch.cdist(pos.double(), pos.double())
        iu = torch.triu_indices(rows.shape[1], rows.shape[1], 1)
        return float((1 / (d[:, iu[0], iu[1]] + 1)).mean())

    assert mean_target(tdann, "layer1.0") == pytest.approx(1 / (1 + 0.5214 * 0.0475), abs=0.004)
    old = get_method("tdann").build("resnet18", 10, preset="cortexsim", layers=["layer1.0"], seed=0)
    assert mean_target(old, "layer1.0") == pytest.approx(1 / (1 + 128 * 0.099 / (45 * np.pi)), abs=0.01)


def test_rf_centres_and_it_retinotopy_match_the_overlap_formula():
    centres, radius = layout.rf_centres(4, 70.0, 0.8)
    assert 2 * radius == pytest.approx(43.75)  # 70 / (4 − 3.2 + 0.8)
    np.testing.assert_allclose(centres, np.linspace(21.875, 48.125, 4))
    # IT at 224 px (512 × 7 × 7), overlap 0.8: centre step 6.364 mm over 7 columns (var 4·step²) and a
    # uniform offset of ±15.909 mm (var 31.818²/12): corr(x, column) = √(162.0 / (162.0 + 84.4)) = 0.811.
    c, h, w = 512, 7, 7
    col = np.tile(np.arange(w), c * h)
    pos = layout.retinotopic((c, h, w), 70.0, rf_overlap=0.8, jitter_mm=0.3, seed=1)
    step, width = (70 - 70 / 2.2) / 6, 70 / 2.2
    want = np.sqrt(4 * step**2 / (4 * step**2 + width**2 / 12))
    assert want == pytest.approx(0.811, abs=1e-3)
    assert np.corrcoef(pos[:, 0], col)[0, 1] == pytest.approx(want, abs=0.01)
    disjoint = layout.retinotopic((c, h, w), 70.0, seed=1)  # cortexsim's earlier disjoint patches: 0.99
    assert np.corrcoef(disjoint[:, 0], col)[0, 1] == pytest.approx(np.sqrt(4 * 100 / (4 * 100 + 100 / 12)), abs=0.005)


def test_jitter_is_gaussian_then_squished_to_the_old_range_and_seeded():
    shape = (64, 16, 16)
    plain = layout.retinotopic(shape, 36.75, rf_overlap=0.2, seed=5)
    jit = layout.retinotopic(shape, 36.75, rf_overlap=0.2, jitter_mm=0.3, seed=5)
    np.testing.assert_allclose(jit.min(axis=0), plain.min(axis=0), atol=1e-9)  # slide back to the old minimum
    np.testing.assert_allclose(jit.max(axis=0), plain.max(axis=0), atol=1e-9)  # squish to the old range
    for axis in range(2):  # jit = s·(plain + noise) + shift: slope s < 1, residual s.d. 0.3·s
        slope, icpt = np.polyfit(plain[:, axis], jit[:, axis], 1)
        resid = jit[:, axis] - (slope * plain[:, axis] + icpt)
        assert 0.9 < slope < 1.0 and resid.std() == pytest.approx(0.3 * slope, rel=0.03)
    np.testing.assert_array_equal(jit, layout.retinotopic(shape, 36.75, rf_overlap=0.2, jitter_mm=0.3, seed=5))
    assert not np.array_equal(jit, layout.retinotopic(shape, 36.75, rf_overlap=0.2, jitter_mm=0.3, seed=6))


def test_square_windows_on_a_lattice_have_the_hand_counted_size():
    # units every 0.1 mm on a 10 mm square; a 1 mm square window holds 10 × 10 lattice points (11 only on a
    # measure-zero set of centres), so K = max(100, 25) = 100 and every window is kept.
    g = np.arange(101) * 0.1
    pos = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    win = neighbourhood_windows(pos, 1.0, seed=0)
    assert (win.k, len(win)) == (100, 20_000)
    assert (win.centres >= 0.5).all() and (win.centres <= 9.5).all()  # half a width inside the sheet
    rows = neighbourhood_table(pos, 1.0, n_rows=50, seed=0)
    c = neighbourhood_windows(pos, 1.0, n_rows=50, seed=0).centres
    assert (np.abs(pos[rows] - c[:, None]).max(-1) <= 0.5).all()  # every unit inside its square
    # a 0.3 mm window holds 3 × 3 units: below TDANN's 25-unit floor, so no window qualifies
    with pytest.raises(Exception, match="hold only 9 units"):
        neighbourhood_windows(pos, 0.3)
    assert neighbourhood_windows(pos, 0.3, min_units=3).k == 9


def test_min_25_floor_and_dropped_windows():
    # Poisson points, ~16 per window on average: the 5th percentile is below 25, so K = 25 and only the
    # windows holding ≥ 25 units remain.
    rng = np.random.default_rng(0)
    pos = rng.uniform(0, 20, size=(6400, 2))  # 16 / mm²
    win = neighbourhood_windows(pos, 1.0, n_rows=4000, seed=1)
    assert win.k == 25 and 0 < len(win) < 400
    inside = (np.abs(pos[None] - win.centres[:, None]).max(-1) <= 0.5).sum(1)
    assert (inside >= 25).all()


def test_reference_neighbourhood_sizes_at_224_px():
    # The measurement of spacetorch at 224 px: V2 500 units (cortexsim's discs gave 306), V4 481-500.
    v2 = layout.retinotopic((256, 14, 14), 35.0, rf_overlap=0.4, jitter_mm=0.3, seed=0)
    v4 = layout.retinotopic((256, 14, 14), 22.4, rf_overlap=0.4, jitter_mm=0.3, seed=0)
    assert neighbourhood_windows(v2, 3.977, seed=0).k == 500
    assert 480 <= neighbourhood_windows(v4, 2.545, seed=0).k <= 500
    old = layout.retinotopic((256, 14, 14), 35.0, seed=0)
    assert neighbourhood_windows(old, 0.1136 * 35, n_rows=1024, shape="disc", min_units=3, seed=4).k == 306


def test_window_subsets_are_fixed_uniform_and_seeded():
    rng = np.random.default_rng(3)
    pos = rng.uniform(0, 10, size=(3000, 2))
    win = neighbourhood_windows(pos, 3.0, max_units=40, n_rows=3000, seed=2)
    table = neighbourhood_table(pos, 3.0, max_units=40, n_rows=3000, seed=2)
    np.testing.assert_array_equal(table, neighbourhood_table(pos, 3.0, max_units=40, n_rows=3000, seed=2))
    assert not np.array_equal(table, neighbourhood_table(pos, 3.0, max_units=40, n_rows=3000, seed=3))
    inside = np.abs(pos[None] - win.centres[:, None]).max(-1) <= 1.5  # (R, U)
    picked = np.zeros_like(inside)
    np.put_along_axis(picked, table, True, axis=1)
    assert not (picked & ~inside).any()
    # each member of a window is picked with probability K / n_window: expected and observed totals agree
    expected = (inside * (win.k / inside.sum(1, keepdims=True))).sum(0)
    observed = picked.sum(0)
    central = expected > 50
    z = (observed[central] - expected[central]) / np.sqrt(expected[central])
    assert abs(z.mean()) < 0.2 and 0.7 < z.std() < 1.3


def test_recipe_is_tdanns_supervised_config():
    d = get_method("tdann").defaults
    assert (d["optimizer"], d["momentum"], d["nesterov"], d["weight_decay"], d["scheduler"], d["epochs"]) == (
        "sgd", 0.9, True, 1e-6, "cosine", 200)
    # VISSL auto_lr_scaling: 0.3 per 256 images, linear -> 0.6 at the config's 2 × 256
    assert d["lr"] == pytest.approx(0.3 * 512 / 256) and d["batch_size"] == 512
    tr = Trainer(method="tdann", data="digits", steps=1, batch_size=32, layers=["layer4.1"], device="cpu",
                 progress=False).setup()
    assert tr._lr == pytest.approx(0.3 * 32 / 256)  # the trainer scales like VISSL
    groups = tr._optim.param_groups
    assert all(g["nesterov"] for g in groups)
    bn = {id(p) for m in tr.model.modules() if isinstance(m, torch.nn.BatchNorm2d) for p in m.parameters()}
    for g in groups:
        assert g["weight_decay"] == (0.0 if id(g["params"][0]) in bn else 1e-6)
        assert len({id(p) in bn for p in g["params"]}) == 1
    plain = Trainer(method="tdann", data="digits", steps=1, batch_size=32, layers=["layer4.1"], device="cpu",
                    nesterov=False, progress=False).setup()
    assert not plain._optim.param_groups[0]["nesterov"]


# --------------------------------------------------------------------------- swap pre-optimisation


def _reference_swaps(corr, pos, pairs):
    """spacetorch's swap_optimize_positions written out for one window: for each attempted pair, the
    pearson_scl loss of the two units' rows (scipy pearsonr, cdist rows incl. self-distances) before and
    after swapping their positions; the swap is undone when the loss did not fall."""
    from scipy.spatial.distance import cdist
    from scipy.stats import pearsonr

    pos = pos.copy()
    order = np.arange(len(pos))

    def loss(ab):
        r = corr[ab].ravel()
        t = 1 / (cdist(pos[ab], pos).ravel() + 1)
        return (1 - pearsonr(r, t)[0]) / 2

    for a, b in pairs:
        ab = [a, b]
        before = loss(ab)
        pos[ab] = pos[ab[::-1]]
        if loss(ab) >= before:
            pos[ab] = pos[ab[::-1]]
        else:
            order[ab] = order[ab[::-1]]
    return order


@pytest.mark.slow
def test_tdann_swap_rule_equals_the_reference_loop():
    from cortexsim.swapopt import swap_within_windows

    rng = np.random.default_rng(0)
    ks, k, steps = (12, 9), 12, 150
    corr = np.zeros((2, k, k))
    pos = np.zeros((2, k, 2))
    pairs = np.zeros((2, steps, 2), dtype=np.int64)
    for w, kw in enumerate(ks):  # the second window is padded from 9 to 12 units
        resp = rng.normal(size=(40, kw))
        resp[:, 3] = 1.0  # a constant unit: r = 0 with every unit and itself, as NaNs set to 0
        z = resp - resp.mean(0)
        z = z / np.maximum(np.linalg.norm(z, axis=0), 1e-12)
        corr[w, :kw, :kw] = z.T @ z
        pos[w, :kw] = rng.uniform(0, 3, size=(kw, 2))
        pairs[w] = [rng.choice(kw, 2, replace=False) for _ in range(steps)]
    valid = np.arange(k)[None] < np.array(ks)[:, None]
    order = swap_within_windows(torch.tensor(corr), torch.tensor(pos), torch.tensor(valid), torch.tensor(pairs)).numpy()
    for w, kw in enumerate(ks):
        want = _reference_swaps(corr[w, :kw, :kw], pos[w, :kw], pairs[w])
        np.testing.assert_array_equal(order[w, :kw], want)
        assert (want != np.arange(kw)).sum() > kw // 2  # many swaps were kept
    np.testing.assert_array_equal(order[1, 9:], [9, 10, 11])  # padding never moves


@pytest.mark.slow
def test_tdann_swap_optimisation_moves_units_locally_and_smooths_a_scrambled_map():
    from cortexsim.swapopt import local_correlation, swap_optimize_windows

    rng = np.random.default_rng(1)
    side = 24
    yy, xx = np.divmod(np.arange(side * side), side)
    slots = np.stack([xx, yy], axis=1).astype(float)
    freqs, phase = rng.normal(scale=0.5, size=(60, 2)), rng.uniform(0, 2 * np.pi, 60)
    resp = np.cos(slots @ freqs.T + phase).T + 0.1 * rng.normal(size=(60, side * side))
    # scramble the map inside 4 × 4 blocks: local disorder the swaps can undo without moving units far
    block = (yy // 4) * (side // 4) + xx // 4
    scramble = np.concatenate([rng.permutation(np.flatnonzero(block == b)) for b in range(block.max() + 1)])
    inv = np.empty_like(scramble)
    inv[np.concatenate([np.flatnonzero(block == b) for b in range(block.max() + 1)])] = scramble
    pos0 = slots[inv]  # unit i sits at slot inv[i], within its own block
    before, ideal = local_correlation(resp, pos0, 1.5), local_correlation(resp, slots, 1.5)  # 0.56, 0.86
    perm = swap_optimize_windows(resp, pos0, 6.0, windows=60, steps_per_window=150, batch=64, seed=0, device="cpu")
    np.testing.assert_array_equal(np.sort(perm), np.arange(side * side))
    after = local_correlation(resp, pos0[perm], 1.5)
    assert after > before + 0.3 * (ideal - before), (before, after, ideal)  # 0.68 here
    assert np.abs(pos0[perm] - pos0).max() <= 6.0  # a unit only moves inside a square of side 6
    again = swap_optimize_windows(resp, pos0, 6.0, windows=60, steps_per_window=150, batch=64, seed=0, device="cpu")
    np.testing.assert_array_equal(perm, again)
    with pytest.raises(Exception, match="at most the sheet's extent"):
        swap_optimize_windows(resp, pos0, 30.0)


def test_squares_run_together_are_the_greedy_non_overlapping_selection():
    from cortexsim.swapopt import _disjoint

    corners = torch.rand(200, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 20
    kept: list[int] = []
    for i in range(len(corners)):  # the squares one after another, as TDANN visits them
        if all(((corners[i] - corners[j]).abs() > 2.5).any() for j in kept):
            kept.append(i)
    assert torch.nonzero(_disjoint(corners, 2.5)).flatten().tolist() == kept and len(kept) > 20
