"""Minibatches: a seeded, shuffling iterator that is a pure function of (seed, epoch)."""

from __future__ import annotations

from typing import Iterator

import numpy as np


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """The order in which epoch ``epoch`` visits the n examples: a permutation drawn from
    ``numpy.random.default_rng((seed, epoch))``, so any epoch can be replayed on its own (what
    an exact resume needs)."""
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng((seed, epoch)).permutation(n)


def num_batches(n: int, batch_size: int, drop_remainder: bool = True) -> int:
    """⌊n / batch_size⌋ batches when the last, smaller one is dropped, else ⌈n / batch_size⌉."""
    return n // batch_size if drop_remainder else -(-n // batch_size)


def batches(x: np.ndarray, y: np.ndarray, batch_size: int, *, seed: int = 0, epoch: int = 0,
            shuffle: bool = True, drop_remainder: bool = True,
            start: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (x_b, y_b) minibatches of one epoch, in the order ``epoch_order(seed, epoch)``.

    The last, smaller batch is dropped by default (``drop_remainder=True``) so a jitted step
    sees one shape and never recompiles; every example is still seen, in other epochs, because
    the order changes with the epoch. ``start`` skips the first batches (resuming mid-epoch).

    Shapes: x (N, ...), y (N, ...) → batches (batch_size, ...).
    """
    if len(x) != len(y):
        raise ValueError(f"batches: x has {len(x)} examples but y has {len(y)}")
    if batch_size < 1:
        raise ValueError(f"batches: batch_size must be >= 1, got {batch_size}")
    n = len(x)
    if drop_remainder and batch_size > n:
        raise ValueError(f"batches: batch_size={batch_size} is larger than the {n} examples and "
                         "drop_remainder=True would yield nothing; lower the batch size")
    order = epoch_order(n, seed, epoch, shuffle)
    for b in range(start, num_batches(n, batch_size, drop_remainder)):
        idx = order[b * batch_size:(b + 1) * batch_size]
        yield x[idx], y[idx]
