"""Data: built-in offline data sets, local-file loaders and minibatching.

``load(name, split, data_dir=None, *, validation_fraction=0.1)`` returns numpy ``(x, y)``;
``split`` is 'train', 'validation' or 'test': 'validation' is a stratified, seeded share of the
published training set (``split``), 'train' the rest of it, 'test' the published test set.
File-based sets (mnist, fashion_mnist, cifar10) read ``data_dir``, else ``$JDL_DATA``; see
docs/data.md for what goes in which folder. Nothing downloads by default.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from jdl.data import augment, builtin
from jdl.data import splits
from jdl.data.batching import batches, epoch_order, num_batches
from jdl.data.splits import split
from jdl.data.validate import check_examples

LOADERS: dict[str, Callable[[str], tuple[np.ndarray, np.ndarray]]] = {
    "digits": builtin.digits,
    "xor": builtin.xor,
    "moons": builtin.moons,
    "circles": builtin.circles,
    "spirals": builtin.spirals,
}
SPLITS = ("train", "validation", "test")
PUBLISHED_SPLITS = ("train", "test")  # what every loader in LOADERS takes
VALIDATION_SEED = 0

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


def load(name: str, split: str = "train", data_dir: str | None = None, *,
         validation_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Load a data set: (x, y) as numpy arrays, x float32 (images NHWC), y int32.

    'validation' is ``split(x, y, validation_fraction, seed=0)``'s held-out part of the published
    training set (stratified by class, the same on every machine), 'train' the rest of the
    published training set, 'test' the published test set, untouched. With the default 0.1:

        name                         published train   train    validation   test
        digits                       1,437             1,293    144          360
        xor, moons, circles, spirals 800               720      80           200
        mnist1d                      4,000             3,600    400          1,000
        mnist, fashion_mnist         60,000            54,000   6,000        10,000
        cifar10                      50,000            45,000   5,000        10,000

    ``validation_fraction=0`` makes 'train' the whole published training set (and 'validation'
    an error). ``data_dir`` is the data root for the sets in ``FILE_LOADERS`` (default
    ``$JDL_DATA``, else ~/.cache/jdl); the built-in sets ignore it.

    >>> x, y = load('digits', 'train')
    >>> x.shape, y.shape
    ((1293, 8, 8, 1), (1293,))
    >>> load('digits', 'train', validation_fraction=0)[0].shape
    (1437, 8, 8, 1)
    """
    if name not in LOADERS:
        raise ValueError(f"jdl.data.load: unknown data set {name!r}; known: {', '.join(names())}")
    if split not in SPLITS:
        raise ValueError(f"jdl.data.load: split must be one of {SPLITS}, got {split!r}")
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"jdl.data.load: validation_fraction must lie in [0, 1), got {validation_fraction}")
    if split == "validation" and validation_fraction == 0:
        raise ValueError(f"jdl.data.load({name!r}, 'validation'): validation_fraction=0 holds out no "
                         "validation set; use validation_fraction > 0 (default 0.1), or "
                         f"load({name!r}, 'train', validation_fraction=0) for the whole published training set")
    published = "test" if split == "test" else "train"
    if name in FILE_LOADERS:
        x, y = FILE_LOADERS[name](published, data_dir)
    else:
        x, y = LOADERS[name](published)
    if split == "test" or validation_fraction == 0:
        return x, y
    try:
        rest, held = splits.split(x, y, validation_fraction, seed=VALIDATION_SEED)
    except ValueError as e:  # a published training set too small to stratify (a hand-made file)
        raise ValueError(f"jdl.data.load({name!r}, {split!r}): cannot hold out a validation set: {e}; "
                         f"load({name!r}, 'train', validation_fraction=0) gives the whole published "
                         "training set") from None
    return held if split == "validation" else rest
