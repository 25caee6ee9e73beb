"""Reset analyses vs the reference notebooks (THANNAGA/Reset-Networks @dc901ff), numbers derived by hand
or by slow re-implementations of what the notebooks compute (issue 12)."""
from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import xarray as xr

import cortexsim as cx
from cortexsim import analysis

SIDE = 32


def _grid_map(values, side=SIDE, attrs=None):
    row, col = np.divmod(np.arange(side * side), side)
    return xr.DataArray(np.asarray(values), dims="unit", name="preference", attrs=attrs or {},
                        coords={"row": ("unit", row), "col": ("unit", col), "x_mm": ("unit", col * 1.0),
                                "y_mm": ("unit", row * 1.0), "unit_id": ("unit", np.arange(side * side))})


def _component_sizes(mask: np.ndarray, connectivity: int = 8) -> list[int]:
    """BFS flood fill of a boolean image: sizes of its connected components."""
    steps = [(1, 0), (-1, 0), (0, 1), (0, -1)] + ([(1, 1), (1, -1), (-1, 1), (-1, -1)] if connectivity == 8 else [])
    seen = np.zeros_like(mask, dtype=bool)
    sizes = []
    for r0, c0 in zip(*np.nonzero(mask)):
        if seen[r0, c0]:
            continue
        seen[r0, c0] = True
        queue, n = deque([(r0, c0)]), 0
        while queue:
            r, c = queue.popleft()
            n += 1
            for dr, dc in steps:
                rr, cc = r + dr, c + dc
                if 0 <= rr < mask.shape[0] and 0 <= cc < mask.shape[1] and mask[rr, cc] and not seen[rr, cc]:
                    seen[rr, cc] = True
                    queue.append((rr, cc))
        sizes.append(n)
    return sizes


def test_default_connectivity_is_eight_as_the_reference_opencv_call_ran():
    # a class on the main diagonal: one 8-connected component of 32 units, 32 components of 1 with 4-connectivity
    labels = np.full((SIDE, SIDE), "none", dtype=object)
    labels[np.arange(SIDE), np.arange(SIDE)] = "faces"
    pref = _grid_map(labels.ravel().astype(str))
    eight = analysis.clustering_index(pref, n_perm=3)
    assert eight["observed"].item() == 32.0 and int(eight["n_components"].sel({"class": "faces"})) == 1
    four = analysis.clustering_index(pref, n_perm=3, connectivity=4)
    assert four["observed"].item() == 1.0 and int(four["n_components"].sel({"class": "faces"})) == 32
    assert eight.attrs["adjacency"] == "grid8"


def test_planted_map_null_is_the_corrected_reference_control():
    # One planted class (a 10×10 blob + scattered units). The notebooks' clustering of a map is the mean
    # component size (8-connected); their control sums 10 shuffles and divides by 20. Ours is the plain mean.
    rng = np.random.default_rng(4)
    img = np.zeros((SIDE, SIDE), dtype=bool)
    img[5:15, 8:18] = True
    img[rng.integers(0, SIDE, 40), rng.integers(0, SIDE, 40)] = True
    labels = np.where(img.ravel(), "faces", "none")
    ci = analysis.clustering_index(_grid_map(labels), n_perm=10, seed=7)
    assert ci["observed"].item() == pytest.approx(np.mean(_component_sizes(img)))
    perm = np.random.default_rng(7)  # the permutations clustering_index draws
    shuffled = [np.mean(_component_sizes((perm.permutation(labels) == "faces").reshape(SIDE, SIDE))) for _ in range(10)]
    np.testing.assert_allclose(ci["null"].values, shuffled)
    reference_control = sum(shuffled) / 20.0  # power = 20 over 10 shuffles
    assert ci["null_mean"].item() == pytest.approx(2 * reference_control)


def test_absent_classes_and_median_as_the_notebooks():
    # classes a (one 16-unit block), b (two 4-unit blocks), c (preferred by no unit):
    # sizes a = 16, b = 4; mean over present = 10; absent c as size 1: mean 7, median 4.
    labels = np.full((SIDE, SIDE), "none", dtype=object)
    labels[0:4, 0:4] = "a"
    labels[10:12, 10:12] = "b"
    labels[20:22, 20:22] = "b"
    pref = _grid_map(labels.ravel().astype(str), attrs={"classes": ["a", "b", "c"]})
    kw = dict(n_perm=2, seed=0)
    assert analysis.clustering_index(pref, **kw)["observed"].item() == 10.0
    assert analysis.clustering_index(pref, absent="one", **kw)["observed"].item() == 7.0
    assert analysis.clustering_index(pref, absent="one", reduce="median", **kw)["observed"].item() == 4.0
    assert analysis.clustering_index(pref, reduce="median", **kw)["observed"].item() == 10.0
    with pytest.raises(ValueError, match="absent must be"):
        analysis.clustering_index(pref, absent="zero")
    with pytest.raises(ValueError, match="reduce must be"):
        analysis.clustering_index(pref, reduce="max")


def test_topography_on_numerosity_values_not_ranks_of_present_classes():
    # Only even numerosities 2..10 are preferred, in stripes. With values |Δ| is twice the rank
    # difference among the 5 present classes, so the index (null mean |Δ| − observed mean |Δ|, n cancels)
    # is exactly twice the rank-based one on the same permutations — the factor ~2 the issue reports.
    row, col = np.divmod(np.arange(SIDE * SIDE), SIDE)
    evens = (2 * (col // 7 + 1)).astype(float)  # 2, 4, 6, 8, 10
    by_value = analysis.topography_index(_grid_map(evens), n_perm=20, seed=1)
    by_rank = analysis.topography_index(_grid_map((evens / 2 - 1)), n_perm=20, seed=1)  # ranks 0..4
    assert by_value.attrs["distance"] == "value"
    assert by_value["index"].item() == pytest.approx(2 * by_rank["index"].item())
    # a number_map Dataset carries the tested numerosities: n = 10 classes although 5 are preferred
    nm = xr.Dataset({"preferred_numerosity": _grid_map(evens)}, coords={"numerosity": np.arange(1, 11)})
    assert analysis.topography_index(nm, n_perm=2).attrs["n_classes"] == 10


def _topo2(labels: np.ndarray) -> float:
    """The notebooks' topo2, written out: interior units with a preference; a neighbour without one (-1)
    counts as distance 10; always divide by 8; 0.1 × mean."""
    n = labels.shape[0]
    total, count = 0.0, 0
    for i in range(1, n - 1):
        for j in range(1, n - 1):
            if labels[i, j] == -1:
                continue
            acc = 0.0
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    if di == dj == 0:
                        continue
                    nb = labels[i + di, j + dj]
                    acc += 10.0 if nb == -1 else abs(nb - labels[i, j])
            total += 10 - acc / 8
            count += 1
    return 0.1 * total / count


def test_topography_options_reproduce_the_notebooks_topo2():
    rng = np.random.default_rng(2)
    row, col = np.divmod(np.arange(SIDE * SIDE), SIDE)
    labels = np.clip(col // 3 + rng.integers(-1, 2, SIDE * SIDE), 0, 9)  # numbers 0..9, noisy gradient
    labels[rng.random(SIDE * SIDE) < 0.15] = -1  # no preference
    num = np.where(labels < 0, np.nan, labels).astype(float)
    tm = analysis.topography_index(_grid_map(num), n_perm=2, none_neighbours="penalise", border="exclude",
                                   normalise=True)
    assert tm.attrs["n_classes"] == 10
    assert tm["observed"].item() == pytest.approx(_topo2(labels.reshape(SIDE, SIDE)))
    with pytest.raises(cx.SheetError, match="border='exclude' needs"):
        analysis.topography_index(_grid_map(num), n_perm=2, border="exclude", k=8, grid=False)


def _planted_sheet(seed=0):
    rng = np.random.default_rng(seed)
    side = 16
    row, col = np.divmod(np.arange(side * side), side)
    cats = np.repeat(["a", "b", "c", "d"], 25)
    r = rng.normal(size=(100, side * side))
    r[:25, col < 4] += 3.0  # columns 0-3 prefer "a"; the rest is pure noise
    return cx.make_sheet(r, x_mm=col * 1.0, y_mm=row * 1.0, row=row, col=col, stimuli={"category": cats}), col


def test_class_mean_dprime_is_the_notebooks_formula_and_marks_noise_units():
    ds, col = _planted_sheet()
    cm = analysis.class_mean_dprime(ds, "category")
    resp = ds.responses.values
    cats = ds.category.values
    means = np.stack([resp[cats == c].mean(0) for c in "abcd"])
    for k in range(4):  # compute_pipeline2: 2 (m1 − m2) / (std1 + std2), std1 = 0 for one mean map
        others = np.delete(means, k, axis=0)
        want = 2 * (means[k] - others.mean(0)) / (0 + np.sqrt(np.var(others, axis=0)))
        np.testing.assert_allclose(cm.values[k], want, rtol=1e-10)
    noise = col >= 4
    per_stimulus = analysis.selectivity(ds, "category")
    assert float(per_stimulus.values[:, noise].max()) < 1.0  # noise units: per-stimulus d′ below 1
    assert (cm.values[:, noise].max(axis=0) > 2).mean() > 0.9  # ... but most exceed 2 on class-mean maps
    ref = analysis.preference_map(ds, "category", stat="class_means")
    ours = analysis.preference_map(ds, "category")
    assert (ours.values[noise] == "none").all() and (ours.values[~noise] == "a").all()
    assert (ref.values[noise] != "none").mean() > 0.9
