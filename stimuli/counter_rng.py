"""Counter-based random numbers: a value depends only on (seed, item, stream, element).

Sets draw per-item noise with these so an image is identical whether it is
rendered alone or inside any batch, while whole batches are still generated
with one vectorised call (no per-image generator objects). The mixing function
is SplitMix64 (Steele, Lea & Flood 2014), which passes BigCrush as a hash of a
counter.
"""
from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (wrap-around arithmetic is intended)."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _C1
        z = (z ^ (z >> np.uint64(27))) * _C2
        return z ^ (z >> np.uint64(31))


def uniform(seed: int, items: np.ndarray, stream: int, n: int) -> np.ndarray:
    """Uniform numbers in the open interval (0, 1).

    Parameters
    ----------
    seed : int
    items : int array, shape (B,)
        Item keys (e.g. stimulus indices in the base set).
    stream : int
        Independent stream number (e.g. one per noise kind / purpose).
    n : int
        Numbers per item.

    Returns
    -------
    ndarray, shape (B, n), float64
    """
    items = np.asarray(items, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        key = _mix(np.uint64(seed & 0xFFFFFFFFFFFFFFFF) * _GOLDEN + np.uint64(stream) + np.zeros(1, np.uint64))
        key = _mix(key ^ _mix(items * _GOLDEN + np.uint64(1)))  # (B,)
        ctr = np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN
        bits = _mix(key[:, None] + ctr[None, :])
    return ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 2**53)


def normal(seed: int, items: np.ndarray, stream: int, n: int) -> np.ndarray:
    """Standard normal numbers, shape (B, n), by the Box–Muller transform of two uniform streams."""
    u1 = uniform(seed, items, 2 * stream, n)
    u2 = uniform(seed, items, 2 * stream + 1, n)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
