"""Position pre-optimisation by swaps (TDANN "swapopt"), vectorised, on GPU when present.

Before topographic training, TDANN shuffles which unit sits where inside local
cortical neighbourhoods so that nearby units already respond alike. Two algorithms:

* :func:`swap_optimize_windows` — **TDANN's** (``spacetorch.swapopt.swap_optimize_neighborhoods``):
  visit random squares of the neighbourhood width (lower-left corner uniform over the sheet's
  extent minus one width), take the units inside (≤ 500, a uniform random subset), and attempt
  500 swaps of a random pair (a, b) of them, keeping a swap when it lowers

      L_ab = (1 − Pearson(r_{a·} ⊕ r_{b·}, 1/(d_{a·} + 1) ⊕ 1/(d_{b·} + 1))) / 2,

  the SL_Rel loss of the two units' rows (correlations r with, and distances d to, every unit of
  the square, the pair itself and the zero self-distances included). Squares are processed in
  batches of non-overlapping squares, so each still sees the units as the squares before it left them.
* :func:`swap_optimize` — cortexsim's own: minimise

      cost = Σ_ij C_ij · D_ij

  over position assignments, where C is the units' response correlation across stimuli and D
  their cortical distance (mm), with the best swap of each of many groups of the K nearest slots
  per round.

Either way retinotopy is preserved, because a unit only moves within a local neighbourhood.

For one neighbourhood of K units, the cost change of swapping units a and b is
(D symmetric, zero diagonal; C with unit diagonal)

    Δ_ab = 2·[(CD)_ab + (CD)_ba − (CD)_aa − (CD)_bb − 2·(1 − C_ab)·D_ab]

restricted to the neighbourhood's own pairs (a local objective, as in TDANN).
All pairs' Δ come from one batched matmul (:func:`swap_gains`); each
neighbourhood applies its best swap when Δ < 0, and within a round only swaps
touching disjoint slots are applied, so no unit is moved twice on stale gains.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree
from tqdm.auto import tqdm, trange

from .errors import LayoutError


def _unit_norm_columns(responses: torch.Tensor) -> torch.Tensor:
    """Centre and L2-normalise each unit's column, so z[:, i] · z[:, j] is Pearson r_ij."""
    z = responses - responses.mean(dim=0, keepdim=True)
    return z / z.norm(dim=0, keepdim=True).clamp_min(1e-12)


def local_correlation(responses: np.ndarray, positions: np.ndarray, radius_mm: float) -> float:
    """Mean response correlation of unit pairs closer than ``radius_mm`` (what swaps should raise).

    Parameters
    ----------
    responses : (n_stimuli, n_units); positions : (n_units, 2|3) mm.
    """
    pairs = cKDTree(positions).query_pairs(radius_mm, output_type="ndarray")
    if len(pairs) == 0:
        raise LayoutError(f"no unit pairs closer than {radius_mm} mm; use a larger radius.")
    r = responses - responses.mean(axis=0)
    r = r / np.maximum(np.linalg.norm(r, axis=0), 1e-12)
    return float(np.einsum("si,si->i", r[:, pairs[:, 0]], r[:, pairs[:, 1]]).mean())


def _inputs(responses: np.ndarray | torch.Tensor, positions: np.ndarray, device: str | torch.device | None,
            dtype: torch.dtype) -> tuple[np.ndarray, torch.Tensor, torch.device]:
    """Checked positions (n, 2|3) float64, responses (S, n) of ``dtype`` and the device (CUDA when present)."""
    pos = np.asarray(positions, dtype=np.float64)
    resp = torch.as_tensor(np.asarray(responses), dtype=dtype)
    if resp.ndim != 2 or pos.ndim != 2 or resp.shape[1] != len(pos):
        raise LayoutError(f"responses must be (n_stimuli, n_units={len(pos)}); got {tuple(resp.shape)}.")
    if not torch.isfinite(resp).all() or not np.isfinite(pos).all():
        raise LayoutError("responses and positions must be finite for swap optimisation.")
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return pos, resp, dev


def swap_gains(c: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Cost change Δ_ab of swapping units a and b, for every pair, batched.

    Parameters
    ----------
    c : (B, K, K) response correlations of the neighbourhood's units (unit diagonal)
    d : (B, K, K) distances (mm) between their current positions (symmetric, zero diagonal)

    Returns
    -------
    (B, K, K) tensor; Δ_ab < 0 lowers Σ_ij C_ij·D_ij over the neighbourhood's ordered pairs.
    """
    cd = c @ d
    diag = torch.diagonal(cd, dim1=1, dim2=2)
    return 2 * (cd + cd.transpose(1, 2) - diag[:, :, None] - diag[:, None, :] - 2 * (1 - c) * d)


def swap_optimize(
    responses: np.ndarray | torch.Tensor,
    positions: np.ndarray,
    *,
    neighbourhood: int = 32,
    iterations: int = 200,
    batch: int = 64,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Permutation of units over positions that makes nearby units correlated.

    Parameters
    ----------
    responses : (n_stimuli, n_units)
        Responses of the layer's units (e.g. to natural images) — defines C.
    positions : (n_units, 2 | 3), mm
        Initial positions (e.g. :func:`cortexsim.layout.retinotopic`).
    neighbourhood : int
        Units per neighbourhood (the K nearest to a random centre unit).
    iterations : int
        Rounds; each samples ``batch`` neighbourhoods and applies their best swaps.
    seed : int
    device : torch device (default: CUDA when available)
    progress : bool

    Returns
    -------
    ndarray (n_units,) of int
        ``perm`` such that unit ``i`` moves to ``positions[perm[i]]``; use
        ``positions[perm]`` as the optimised positions.
    """
    pos, resp, dev = _inputs(responses, positions, device, torch.float32)
    n = len(pos)
    k = min(int(neighbourhood), n)
    if k < 2:
        raise LayoutError(f"neighbourhood must hold at least 2 units; got {k}.")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    # Correlations are computed per sampled neighbourhood from the normalised responses
    # (n_stimuli × n_units), never as an n × n matrix: TDANN layers hold 10^5 units.
    z = _unit_norm_columns(resp.to(dev))
    _, nbrs = cKDTree(pos).query(pos, k=k)                              # slots near each slot
    nbrs = torch.as_tensor(np.asarray(nbrs).reshape(n, k), device=dev)
    slot_pos = torch.as_tensor(pos, dtype=torch.float32, device=dev)
    unit_at = torch.arange(n, device=dev)                               # slot -> unit sitting there
    iu = torch.triu_indices(k, k, offset=1, device=dev)
    for _ in trange(iterations, disable=None if progress else True, desc="swapopt"):
        centres = torch.randint(0, n, (batch,), generator=gen).to(dev)
        slots = nbrs[centres]                                           # (B, K) slots
        units = unit_at[slots]                                          # (B, K) units in them
        zu = z[:, units]                                                # (S, B, K)
        c = torch.einsum("sbk,sbl->bkl", zu, zu)                        # (B, K, K) Pearson r
        c.diagonal(dim1=1, dim2=2).fill_(1.0)                           # dead units: r_ii = 1 still
        p = slot_pos[slots]
        d = torch.cdist(p, p)                                           # (B, K, K) mm
        flat = swap_gains(c, d)[:, iu[0], iu[1]]                                   # (B, K(K-1)/2)
        best, arg = flat.min(dim=1)
        a, b = iu[0][arg], iu[1][arg]
        sa = slots.gather(1, a[:, None])[:, 0]
        sb = slots.gather(1, b[:, None])[:, 0]
        # Keep improving swaps whose slots no other improving swap touches.
        keep = best < 0
        touched = torch.cat([sa[keep], sb[keep]])
        counts = torch.bincount(touched, minlength=n) if touched.numel() else torch.zeros(n, dtype=torch.long, device=dev)
        keep &= (counts[sa] == 1) & (counts[sb] == 1)
        ua, ub = unit_at[sa[keep]], unit_at[sb[keep]]
        unit_at[sa[keep]], unit_at[sb[keep]] = ub, ua
    perm = torch.empty(n, dtype=torch.long, device=dev)
    perm[unit_at] = torch.arange(n, device=dev)                         # unit -> slot
    return perm.cpu().numpy()


# --------------------------------------------------------------------------- TDANN's algorithm


def swap_within_windows(corr: torch.Tensor, positions: torch.Tensor, valid: torch.Tensor,
                        pairs: torch.Tensor) -> torch.Tensor:
    """TDANN's swap attempts inside B windows at once, each window on its own units.

    Parameters
    ----------
    corr : (B, K, K) response correlations of each window's units (0 for a constant unit, also on
        the diagonal, as ``np.corrcoef`` NaNs set to 0 in the reference)
    positions : (B, K, 2|3) their positions, mm
    valid : (B, K) bool, real units (a window with fewer than K units is padded at the end)
    pairs : (B, T, 2) long, the pair (a, b), a ≠ b, both valid, attempted at step t of each window

    Returns
    -------
    (B, K) long ``order``: unit j of a window ends at the position ``positions[order[j]]`` had.

    Notes
    -----
    The reference keeps a swap unless L_after ≥ L_before, L = (1 − Pearson(x, y)) / 2 over the
    2K entries x = (r_a·, r_b·), y = (1/(d_a· + 1), 1/(d_b· + 1)). Swapping a and b only permutes y
    (a's new distances are b's old ones with the entries a and b exchanged, and vice versa), so the
    means and norms of x and y are the same before and after and the rule is Σ x·y_after > Σ x·y_before,
    with Σ x·y_after = Σ r_a·t_b + Σ r_b·t_a + (1 − s)(r_aa − r_ab + r_bb − r_ba), t = 1/(d + 1) and
    s = t_ab. A constant x or y (Pearson NaN) keeps the swap, as NaN ≥ NaN is false.
    """
    bsz, k = valid.shape
    dim = positions.shape[-1]
    base = torch.arange(bsz, device=corr.device)[:, None] * k  # row offsets into the flattened windows
    order = torch.arange(k, device=corr.device).repeat(bsz, 1)
    c = corr * valid[:, None, :]  # padding columns add nothing to Σ x·y
    rows = c.reshape(bsz * k, k)
    big = torch.finfo(c.dtype).max
    row_min = torch.where(valid[:, None, :], c, big).amin(-1).reshape(-1)
    row_max = torch.where(valid[:, None, :], c, -big).amax(-1).reshape(-1)
    p = positions.clone().reshape(bsz * k, dim)
    flat = torch.where(valid[..., None], positions, positions[:, :1])
    flat_y = (flat == flat[:, :1]).all(-1).all(-1)  # all units at one point: y is constant
    order = order.reshape(-1)
    for t in range(pairs.shape[1]):  # sequential: each attempt sees the previous swaps
        ab = pairs[:, t] + base  # (B, 2) flat indices of a and b
        pab = p.index_select(0, ab.reshape(-1)).reshape(bsz, 2, dim)
        d = torch.cdist(pab, p.reshape(bsz, k, dim), compute_mode="donot_use_mm_for_euclid_dist")
        t_ab = 1.0 / (d + 1.0)  # (B, 2, K): t_a·, t_b·
        r_ab = rows.index_select(0, ab.reshape(-1)).reshape(bsz, 2, k)  # r_a·, r_b·
        before = (r_ab * t_ab).sum((1, 2))
        after = (r_ab * t_ab.flip(1)).sum((1, 2))
        # Δ of the entries a and b: (1 − s)(r_aa − r_ab + r_bb − r_ba), s = t_ab
        cols = pairs[:, t]
        r_at = r_ab.gather(2, cols[:, None, :].expand(bsz, 2, 2))  # [[r_aa, r_ab], [r_ba, r_bb]]
        s = t_ab[:, 0].gather(1, cols[:, 1:])[:, 0]
        after = after + (1.0 - s) * (r_at[:, 0, 0] - r_at[:, 0, 1] + r_at[:, 1, 1] - r_at[:, 1, 0])
        mins, maxs = row_min.index_select(0, ab.reshape(-1)), row_max.index_select(0, ab.reshape(-1))
        flat_x = mins.reshape(bsz, 2).amin(1) == maxs.reshape(bsz, 2).amax(1)
        keep = (after > before) | flat_x | flat_y
        src = torch.where(keep[:, None], ab.flip(1), ab).reshape(-1)  # swap the two rows where kept
        p[ab.reshape(-1)] = p.index_select(0, src)
        order[ab.reshape(-1)] = order.index_select(0, src)
    order = order.reshape(bsz, k)
    return order


def _disjoint(corners: torch.Tensor, width: float) -> torch.Tensor:
    """Which squares (lower-left ``corners`` (B, 2), side ``width``) to run together: the greedy selection in
    order — a square is taken when it overlaps no square taken before it (vectorised, a few passes)."""
    overlap = ((corners[:, None, :] - corners[None, :, :]).abs() <= width).all(-1)
    earlier = torch.tril(overlap, diagonal=-1)  # earlier[i, j]: j < i and the squares overlap
    taken = torch.zeros(len(corners), dtype=torch.bool, device=corners.device)
    open_ = torch.ones_like(taken)  # not decided yet
    while open_.any():
        blocked = (earlier & (open_ | taken)[None, :]).any(1)  # an earlier square is taken or undecided
        new = open_ & ~blocked
        taken |= new
        open_ &= ~new & ~(earlier & taken[None, :]).any(1)
    return taken


def swap_optimize_windows(
    responses: np.ndarray | torch.Tensor,
    positions: np.ndarray,
    width_mm: float,
    *,
    windows: int = 100_000,
    steps_per_window: int = 500,
    max_units: int = 500,
    min_units: int = 5,
    batch: int = 256,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> np.ndarray:
    """TDANN's swap optimisation (``swap_optimize_neighborhoods``): a permutation of units over positions.

    Parameters
    ----------
    responses : (n_stimuli, n_units)
        Responses defining the unit correlations (TDANN: a trained network's responses to sine gratings).
    positions : (n_units, 2 | 3), mm
    width_mm : side of the squares (TDANN: the area's neighbourhood width); ≤ the sheet's extent
    windows : squares visited (TDANN's config: 50,000,000 steps / 500 per square = 100,000)
    steps_per_window : swap attempts per square (TDANN: 500)
    max_units : at most this many units of a square take part, a uniform random subset (TDANN: 500)
    min_units : squares with fewer units are skipped (TDANN: 5)
    batch : squares proposed at once; those overlapping a square taken before them in the batch are
        dropped (the rest run together, :func:`_disjoint`), so every square sees the swaps of the squares
        before it, as in TDANN's loop
    seed, device, progress : as :func:`swap_optimize`

    Returns
    -------
    ndarray (n_units,) of int ``perm``: use ``positions[perm]`` as the optimised positions.

    Notes
    -----
    Differences from the reference, none of them in the rule: the reference re-seeds its pair
    generator with one constant for every square (the same local pair sequence in each), draws
    corners from an unseeded global state, and its ≥ 500-unit subset calls ``np.rng.choice``, which does
    not exist in NumPy (such squares would stop it); here every draw comes from ``seed``.
    """
    pos, resp, dev = _inputs(responses, positions, device, torch.float64)
    n = len(pos)
    extent = pos.max(0) - pos.min(0)
    if not width_mm > 0 or (extent[:2] < width_mm).any():
        raise LayoutError(f"the square width must be > 0 and at most the sheet's extent {extent[:2].round(4).tolist()} mm; "
                          f"got {width_mm}.")
    if steps_per_window < 1 or windows < 0 or batch < 1 or max_units < 2 or min_units < 2:
        raise LayoutError("steps_per_window and batch must be ≥ 1, windows ≥ 0, max_units and min_units ≥ 2.")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    z = _unit_norm_columns(resp.to(dev))  # a constant unit: z = 0, so r = 0 with every unit and itself
    slot_pos = torch.as_tensor(pos, device=dev)
    lo, span = torch.as_tensor(pos.min(0)[:2], device=dev), torch.as_tensor(extent[:2] - width_mm, device=dev)
    unit_at = torch.arange(n, device=dev)
    bar = tqdm(total=windows, disable=None if progress else True, desc="swapopt (TDANN)")
    done = 0
    while done < windows:
        corners = (lo + torch.rand(min(batch, windows - done), 2, generator=gen, dtype=torch.float64).to(dev) * span)
        corners = corners[_disjoint(corners, width_mm)]
        done += len(corners)
        bar.update(len(corners))
        xy = slot_pos[None, :, :2]
        inside = ((xy >= corners[:, None]) & (xy <= corners[:, None] + width_mm)).all(-1)  # (B, n) slots
        count = inside.sum(1).clamp_max(max_units)
        active = count >= min_units
        if not active.any():
            continue
        inside, count, corners = inside[active], count[active], corners[active]
        k = int(count.max())
        keys = torch.rand(inside.shape, generator=gen, dtype=torch.float32).to(dev).masked_fill(~inside, 2.0)
        slots = torch.topk(keys, k, dim=1, largest=False).indices  # inside first, a uniform random subset
        valid = torch.arange(k, device=dev)[None] < count[:, None]
        units = unit_at[slots]
        zu = z[:, units]  # (S, B, K)
        corr = torch.einsum("sbk,sbl->bkl", zu, zu)
        u = torch.rand(len(slots), steps_per_window, 2, generator=gen, dtype=torch.float64).to(dev)
        kk = count[:, None].to(torch.float64)
        a = (u[..., 0] * kk).long().clamp_max(count[:, None] - 1)
        b = (u[..., 1] * (kk - 1)).long().clamp_max(count[:, None] - 2)
        b = b + (b >= a).long()  # a second, different unit
        order = swap_within_windows(corr, slot_pos[slots], valid, torch.stack([a, b], dim=-1))
        new_slots = slots.gather(1, order)
        unit_at[new_slots[valid]] = units[valid]
    bar.close()
    perm = torch.empty(n, dtype=torch.long, device=dev)
    perm[unit_at] = torch.arange(n, device=dev)
    return perm.cpu().numpy()
