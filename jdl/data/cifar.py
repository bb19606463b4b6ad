"""CIFAR-10 from its python pickle batches in a local folder.

    <data root>/cifar10/cifar-10-batches-py/  data_batch_1 … data_batch_5, test_batch

(the folder ``cifar-10-python.tar.gz`` unpacks to). Each batch is a pickled dict with
``data``, a uint8 array (10000, 3072) whose row holds the 1024 red, then 1024 green, then 1024
blue values of a 32×32 image in row-major order, and ``labels``, 10000 ints in 0..9
(Krizhevsky 2009). Pickles can run code when loaded, so they are read with an unpickler that
only builds dicts, lists, strings, numbers and numpy arrays.
"""

from __future__ import annotations

import io
import os
import pickle

import numpy as np

from jdl.data.files import DataFileError, data_root, find_file
from jdl.data.idx import read_bytes

FOLDER = os.path.join("cifar10", "cifar-10-batches-py")
BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
           ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
           ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global but numpy's array reconstruction."""

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a data batch")
        return super().find_class(module, name)


def read_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Read one pickle batch: (data (n, 3072) uint8, labels (n,) int64), checked.

    Raises ``DataFileError`` naming the file when it does not unpickle, is not a dict with
    ``data`` and ``labels``, has rows that are not 3072 bytes, as many labels as rows, or labels
    outside 0..9.
    """
    try:
        batch = SafeUnpickler(io.BytesIO(read_bytes(path)), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise DataFileError(f"{path}: not a readable CIFAR-10 pickle batch ({type(e).__name__}: {e})") from None
    if not isinstance(batch, dict):
        raise DataFileError(f"{path}: a CIFAR-10 batch is a dict, found {type(batch).__name__}")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise DataFileError(f"{path}: a CIFAR-10 batch needs keys 'data' and 'labels', found {sorted(batch)}")
    data, labels = np.asarray(batch["data"]), np.asarray(batch["labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataFileError(f"{path}: 'data' must be uint8 of shape (n, 3072) = 3×32×32, "
                            f"found {data.dtype} {data.shape}")
    if labels.shape != (len(data),):
        raise DataFileError(f"{path}: {len(data)} images but labels of shape {labels.shape}")
    if len(labels) and not np.issubdtype(labels.dtype, np.integer):
        raise DataFileError(f"{path}: labels must be integers, found {labels.dtype}")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DataFileError(f"{path}: labels must lie in 0..9, found {labels.min()}..{labels.max()}")
    return data, labels


def cifar10(split: str, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10: 32×32 colour images of 10 classes (``CLASSES``), 50,000 train and 10,000 test
    with the published batches, read from ``<data root>/cifar10/cifar-10-batches-py/``.

    Returns x (N, 32, 32, 3) float32 in [0, 1] (NHWC, channels RGB) and y (N,) int32.
    """
    folder = os.path.join(data_root(data_dir), FOLDER)
    wanted = BATCHES["train"] + BATCHES["test"]
    parts = [read_batch(find_file(folder, name, "cifar10", wanted)) for name in BATCHES[split]]
    data = np.concatenate([d for d, _ in parts])
    x = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # (N, C, H, W) → (N, H, W, C)
    y = np.concatenate([lab for _, lab in parts]).astype(np.int32)
    x = x.astype(np.float32)
    x /= 255.0  # in place: one float32 copy, not two
    return x, y
