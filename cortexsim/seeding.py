"""One seed scheme: every random stream in cortexsim is derived from (seed, *keys).

A run has one integer ``seed``; each consumer (an epoch's shuffle, one sample's
augmentation, a repeat of a noise draw, a layer's layout) takes its own stream
``derive_seed(seed, *keys)`` with keys naming it. Keys are mixed by NumPy's
:class:`~numpy.random.SeedSequence` (a hash designed for this: nearby or
permuted keys give unrelated streams, unlike ``seed * 7919 + epoch``, where
``(0, 7919)`` and ``(1, 0)`` collide). The root seed alone is used as is, so
``numpy_rng(s)`` equals ``np.random.default_rng(s)`` and ``torch_generator(s)``
equals ``torch.Generator().manual_seed(s)``. torch is imported only by the
functions that need it (layouts seed with this module; ``import cortexsim``
stays free of torch).
"""
from __future__ import annotations

import contextlib
import random
import zlib
from collections.abc import Iterator

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["derive_seed", "numpy_rng", "seed_everything", "seeded", "torch_generator"]

_MASK64 = (1 << 64) - 1
_MAX_SEED = (1 << 63) - 1  # torch.manual_seed takes [-2**63, 2**64); stay positive and int64-safe


def _word(key: int | str) -> int:
    if isinstance(key, (bool, np.bool_)):
        return int(key)
    if isinstance(key, (int, np.integer)):
        return int(key) & _MASK64  # negative keys (e.g. -1 for "whole epoch") map to distinct words
    if isinstance(key, str):
        return zlib.crc32(key.encode()) | (1 << 32)  # stable across processes (hash() is salted); never an int key's small word
    raise TypeError(f"seed keys are ints or strings; got {type(key).__name__} {key!r}.")


def derive_seed(seed: int, *keys: int | str) -> int:
    """A 63-bit seed for the stream named by ``keys`` under the root ``seed``.

    Parameters
    ----------
    seed : int
        The root seed (any int; negative ones are taken modulo 2**64).
    *keys : int or str
        Stream names, e.g. ``derive_seed(seed, "augment", epoch, index)``.

    Returns
    -------
    int in [0, 2**63)
        ``seed`` itself when no key is given (and it is in range).
    """
    if not keys and 0 <= int(seed) <= _MAX_SEED:
        return int(seed)
    words = [_word(seed), *(_word(k) for k in keys)]
    state = np.random.SeedSequence(words).generate_state(1, dtype=np.uint64)[0]
    return int(state) & _MAX_SEED


def numpy_rng(seed: int, *keys: int | str) -> np.random.Generator:
    """``np.random.default_rng`` on the stream ``derive_seed(seed, *keys)``."""
    return np.random.default_rng(derive_seed(seed, *keys))


def torch_generator(seed: int, *keys: int | str, device: str | torch.device = "cpu") -> torch.Generator:
    """A private ``torch.Generator`` on the stream ``derive_seed(seed, *keys)`` (draws leave the global RNG alone)."""
    import torch

    return torch.Generator(device=device).manual_seed(derive_seed(seed, *keys))


@contextlib.contextmanager
def seeded(seed: int, *keys: int | str) -> Iterator[None]:
    """Seed the global CPU torch RNG for the block, then restore the caller's stream.

    For code that draws from the global RNG and cannot take a generator (module
    constructors' weight init, torchvision transforms): building a model inside
    ``with seeded(seed):`` gives the same weights every time and does not move the
    caller's random stream. Only the CPU generator is forked — ``torch.manual_seed``
    would also reseed CUDA, which ``fork_rng(devices=[])`` does not restore.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(derive_seed(seed, *keys))
        yield


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's legacy global RNG and torch (CPU and CUDA) with ``seed``.

    For a training process's start; library code takes generators from
    :func:`numpy_rng` / :func:`torch_generator` instead of drawing from globals.
    """
    import torch

    s = derive_seed(seed)
    random.seed(s)
    np.random.seed(s % 2**32)
    torch.manual_seed(s)
