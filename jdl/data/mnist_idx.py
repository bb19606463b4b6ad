"""MNIST and Fashion-MNIST from their IDX files in a local folder.

    <data root>/mnist/          train-images-idx3-ubyte  train-labels-idx1-ubyte
    <data root>/fashion_mnist/  t10k-images-idx3-ubyte   t10k-labels-idx1-ubyte
                                (each may be gzipped: the same name + .gz)

Both are 28×28 grey images in 0..255 with labels 0..9: 60,000 for training, 10,000 for testing.
Fashion-MNIST (Xiao et al. 2017) is a drop-in replacement with clothes instead of digits.
"""

from __future__ import annotations

import os

import numpy as np

from jdl.data.files import DataFileError, data_root, find_file
from jdl.data.idx import read_idx

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
PREFIX = {"train": "train", "test": "t10k"}
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def load_idx_pair(folder: str, split: str, dataset: str, n_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Read ``<prefix>-images-idx3-ubyte`` and ``<prefix>-labels-idx1-ubyte`` from ``folder``.

    Checks the magic numbers (2051 images, 2049 labels), that images are N×28×28, that there are
    as many labels as images, and that labels lie in 0..n_classes−1.

    Returns x (N, 28, 28, 1) float32 in [0, 1] (NHWC) and y (N,) int32.
    """
    images_path = find_file(folder, f"{PREFIX[split]}-images-idx3-ubyte", dataset, FILES)
    labels_path = find_file(folder, f"{PREFIX[split]}-labels-idx1-ubyte", dataset, FILES)
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        raise DataFileError(f"{images_path}: images are {images.shape[1]}×{images.shape[2]}, expected 28×28")
    if len(images) != len(labels):
        raise DataFileError(f"{dataset} {split}: {images_path} holds {len(images)} images but "
                            f"{labels_path} holds {len(labels)} labels")
    if len(labels) and labels.max() >= n_classes:
        raise DataFileError(f"{labels_path}: label {int(labels.max())} is outside 0..{n_classes - 1}")
    x = images.astype(np.float32)
    x /= 255.0  # in place: one float32 copy, not two
    x = x[..., None]  # (N, 28, 28, 1)
    return x, labels.astype(np.int32)


def mnist(split: str, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MNIST handwritten digits (LeCun et al. 1998) from ``<data root>/mnist/``.

    Returns x (N, 28, 28, 1) float32 in [0, 1] and y (N,) int32 in 0..9; N = 60,000 for 'train'
    and 10,000 for 'test' with the published files.
    """
    return load_idx_pair(os.path.join(data_root(data_dir), "mnist"), split, "mnist")


def fashion_mnist(split: str, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST (Zalando's clothes images, Xiao et al. 2017) from ``<data root>/fashion_mnist/``.

    Labels: 0 T-shirt/top, 1 trouser, 2 pullover, 3 dress, 4 coat, 5 sandal, 6 shirt, 7 sneaker,
    8 bag, 9 ankle boot. Shapes as ``mnist``.
    """
    return load_idx_pair(os.path.join(data_root(data_dir), "fashion_mnist"), split, "fashion_mnist")
