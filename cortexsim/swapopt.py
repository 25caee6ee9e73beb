"""Position pre-optimisation by swaps (TDANN "swapopt"), vectorised, on GPU when present.

Before topographic training, TDANN shuffles which unit sits where inside local
cortical neighbourhoods so that nearby units already respond alike. We minimise

    cost = Σ_ij C_ij · D_ij

over position assignments, where C is the units' response correlation across
stimuli and D their cortical distance (mm), using swaps of two units' positions
inside randomly sampled neighbourhoods (retinotopy is preserved because a unit
only moves within its neighbourhood).

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
from tqdm.auto import trange

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
    pos = np.asarray(positions, dtype=np.float64)
    resp = torch.as_tensor(np.asarray(responses), dtype=torch.float32)
    if resp.ndim != 2 or resp.shape[1] != len(pos):
        raise LayoutError(
            f"responses must be (n_stimuli, n_units={len(pos)}); got {tuple(resp.shape)}."
        )
    if not torch.isfinite(resp).all() or not np.isfinite(pos).all():
        raise LayoutError("responses and positions must be finite for swap optimisation.")
    n = len(pos)
    k = min(int(neighbourhood), n)
    if k < 2:
        raise LayoutError(f"neighbourhood must hold at least 2 units; got {k}.")
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    # Correlations are computed per sampled neighbourhood from the normalised responses
    # (n_stimuli × n_units), never as an n × n matrix: TDANN layers hold 10^5 units.
    z = _unit_norm_columns(resp.to(dev))
    _, nbrs = cKDTree(pos).query(pos, k=k)                              # slots near each slot
    nbrs = torch.as_tensor(np.asarray(nbrs).reshape(n, k), device=dev)
    slot_pos = torch.as_tensor(pos, dtype=torch.float32, device=dev)
    unit_at = torch.arange(n, device=dev)                               # slot -> unit sitting there
    iu = torch.triu_indices(k, k, offset=1, device=dev)
    for _ in trange(iterations, disable=not progress, desc="swapopt"):
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
