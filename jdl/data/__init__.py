"""Data: built-in offline data sets, local-file loaders and minibatching.

``load(name, split, data_dir=None)`` returns numpy ``(x, y)``; ``split`` is 'train' or 'test'.
File-based sets (mnist, fashion_mnist, cifar10) read ``data_dir``, else ``$JDL_DATA``; see
docs/data.md for what goes in which folder. Nothing downloads by default.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from jdl.data import augment, builtin
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

# --- local files and generated sets (issue 6): loaders taking (split, data_dir) ---
from jdl.data.cifar import cifar10  # noqa: E402
from jdl.data.fetch import download  # noqa: E402
from jdl.data.files import DataFileError, data_root  # noqa: E402
from jdl.data.mnist_idx import fashion_mnist, mnist  # noqa: E402
from jdl.data.mnist1d_data import mnist1d  # noqa: E402

FILE_LOADERS = {"mnist1d": mnist1d, "mnist": mnist, "fashion_mnist": fashion_mnist, "cifar10": cifar10}
LOADERS.update(FILE_LOADERS)


def names() -> list[str]:
    """The data sets ``load`` knows."""
    return sorted(LOADERS)


def load(name: str, split: str = "train", data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load a data set: (x, y) as numpy arrays, x float32 (images NHWC), y int32.

    ``data_dir`` is the data root for the sets in ``FILE_LOADERS`` (default ``$JDL_DATA``, else
    ~/.cache/jdl); the built-in sets ignore it.

    >>> x, y = load('digits', 'train')
    >>> x.shape, y.shape
    ((1437, 8, 8, 1), (1437,))
    """
    if name not in LOADERS:
        raise ValueError(f"jdl.data.load: unknown data set {name!r}; known: {', '.join(names())}")
    if split not in SPLITS:
        raise ValueError(f"jdl.data.load: split must be one of {SPLITS}, got {split!r}")
    if name in FILE_LOADERS:
        return FILE_LOADERS[name](split, data_dir)
    return LOADERS[name](split)
