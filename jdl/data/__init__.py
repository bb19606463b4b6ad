"""Data: built-in offline data sets, local-file loaders, text encoding and minibatching.

``load(name, split, data_dir=None, *, validation_fraction=0.1, seq_len=None, stride=None)``
returns numpy ``(x, y)``; ``split`` is 'train', 'validation' or 'test': 'validation' is a
stratified, seeded share of the published training set (``split``), 'train' the rest of it,
'test' the published test set. Text sets (``SEQUENCE_LOADERS``: pydoc_text) are split by
position instead and cut into next-token windows of ``seq_len``. File-based sets (mnist,
fashion_mnist, cifar10) read ``data_dir``, else ``$JDL_DATA``; see docs/data.md for what goes
in which folder. Nothing downloads by default.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from jdl.data import augment, builtin, color
from jdl.data import standardize
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

# --- text (issue 14): loaders taking (split, validation_fraction, seq_len, stride), split by position ---
from jdl.data import text  # noqa: E402
from jdl.data.pydoc_topics import pydoc_ids, pydoc_info, pydoc_text, pydoc_vocab  # noqa: E402
from jdl.data import bpe  # noqa: E402  (issue 15: byte-level BPE, jdl.data.bpe)

SEQUENCE_LOADERS = {"pydoc_text": pydoc_text}
VOCABS = {"pydoc_text": pydoc_vocab}  # each text set's fixed vocabulary, shared by its splits

# --- detection (issue 18): y is a record array of padded boxes, labels and a valid mask ---
from jdl.data import shapes as shapes_data  # noqa: E402

DETECTION_LOADERS = {"shapes": shapes_data.shapes}


def names() -> list[str]:
    """The data sets ``load`` knows."""
    return sorted([*LOADERS, *SEQUENCE_LOADERS, *DETECTION_LOADERS])


def load(name: str, split: str = "train", data_dir: str | None = None, *, validation_fraction: float = 0.1,
         seq_len: int | None = None, stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load a data set: (x, y) as numpy arrays, x float32 (images NHWC), y int32; for a text set,
    x and y int32 (N, T) next-token windows.

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
    ``$JDL_DATA``, else ~/.cache/jdl); the built-in and text sets ignore it.

    Text sets (``SEQUENCE_LOADERS``: pydoc_text) are split by position, not stratified:
    'validation' is the last ``validation_fraction`` of the published training text and 'train'
    the text before it. Each split's character ids are cut into windows x_i = ids[i·s : i·s + T]
    with targets y_i = ids[i·s + 1 : i·s + T + 1] (``jdl.data.text.windows``), T = ``seq_len``
    (default 64), s = ``stride`` (default T); the other sets refuse ``seq_len`` and ``stride``.
    pydoc_text is the running Python's ``pydoc_data`` text (``pydoc_info()`` says which); on
    CPython 3.11.7:

        pydoc_text characters        418,473           376,626  41,847       46,497
        pydoc_text windows (T=64)    6,538             5,884    653          726

    Detection sets (``DETECTION_LOADERS``: shapes, ``jdl.data.shapes``) return x (N, 64, 64, 3)
    float32 and y (N,) records of padded boxes, labels and valid mask; their images are i.i.d.,
    so 'validation' is the last ``validation_fraction`` of the published training images:

        shapes                       4,500             4,050    450          1,000

    >>> x, y = load('digits', 'train')
    >>> x.shape, y.shape
    ((1293, 8, 8, 1), (1293,))
    >>> load('digits', 'train', validation_fraction=0)[0].shape
    (1437, 8, 8, 1)
    """
    if name not in names():
        raise ValueError(f"jdl.data.load: unknown data set {name!r}; known: {', '.join(names())}")
    if split not in SPLITS:
        raise ValueError(f"jdl.data.load: split must be one of {SPLITS}, got {split!r}")
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"jdl.data.load: validation_fraction must lie in [0, 1), got {validation_fraction}")
    if split == "validation" and validation_fraction == 0:
        raise ValueError(f"jdl.data.load({name!r}, 'validation'): validation_fraction=0 holds out no "
                         "validation set; use validation_fraction > 0 (default 0.1), or "
                         f"load({name!r}, 'train', validation_fraction=0) for the whole published training set")
    if name in SEQUENCE_LOADERS:
        options = {k: v for k, v in (("seq_len", seq_len), ("stride", stride)) if v is not None}
        return SEQUENCE_LOADERS[name](split, validation_fraction, **options)
    if seq_len is not None or stride is not None:
        raise ValueError(f"jdl.data.load({name!r}): seq_len and stride apply to the text sets "
                         f"({', '.join(SEQUENCE_LOADERS)}), not to {name!r}; leave them out")
    published = "test" if split == "test" else "train"
    if name in DETECTION_LOADERS:
        return detection_split(name, split, data_dir, validation_fraction)
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


def detection_split(name: str, split: str, data_dir: str | None, validation_fraction: float):
    """A detection set's split: 'test' as published; 'validation' the last
    round(fraction·N) published training images (they are i.i.d.), 'train' the ones before."""
    x, y = DETECTION_LOADERS[name]("test" if split == "test" else "train", data_dir)
    if split == "test":
        return x, y
    n_train = len(x) - round(validation_fraction * len(x))
    return (x[n_train:], y[n_train:]) if split == "validation" else (x[:n_train], y[:n_train])
