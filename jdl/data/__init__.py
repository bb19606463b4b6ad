"""Data: built-in offline data sets and minibatching.

``load(name, split)`` returns numpy ``(x, y)``; ``split`` is 'train' or 'test'.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from jdl.data import builtin
from jdl.data.batching import batches, epoch_order, num_batches
from jdl.data.validate import check_examples

LOADERS: dict[str, Callable[[str], tuple[np.ndarray, np.ndarray]]] = {
    "digits": builtin.digits,
    "xor": builtin.xor,
    "moons": builtin.moons,
    "circles": builtin.circles,
    "spirals": builtin.spirals,
}
SPLITS = ("train", "test")


def names() -> list[str]:
    """The data sets ``load`` knows."""
    return sorted(LOADERS)


def load(name: str, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Load a built-in data set: (x, y) as numpy arrays, x float32 (images NHWC), y int32.

    >>> x, y = load('digits', 'train')
    >>> x.shape, y.shape
    ((1437, 8, 8, 1), (1437,))
    """
    if name not in LOADERS:
        raise ValueError(f"jdl.data.load: unknown data set {name!r}; known: {', '.join(names())}")
    if split not in SPLITS:
        raise ValueError(f"jdl.data.load: split must be one of {SPLITS}, got {split!r}")
    return LOADERS[name](split)
