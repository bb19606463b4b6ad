"""Checks at the edge, once per data set and cheap (one pass of ``isfinite`` and a min/max): the
examples are one shape, the features finite, the labels integers within the number of classes.
Every refusal names the data set and the index of the first example that is wrong."""

from __future__ import annotations

from typing import Any

import numpy as np


def as_examples(name: str, x: Any) -> np.ndarray:
    """``x`` as one numpy array (N, ...); a list of examples of different shapes is refused,
    naming the first example whose shape differs from example 0's."""
    if isinstance(x, (list, tuple)) and x:
        first = np.shape(x[0])
        for i, xi in enumerate(x):
            if np.shape(xi) != first:
                raise ValueError(f"{name}[{i}] has shape {np.shape(xi)} but {name}[0] has {first}; "
                                 "every example must have the same shape")
    arr = np.asarray(x)
    if arr.dtype == object:
        raise TypeError(f"{name} is an array of Python objects, not numbers")
    if arr.ndim == 0:
        raise ValueError(f"{name} must have a leading example axis (N, ...), got a scalar")
    return arr


def first_index(mask: np.ndarray) -> tuple[int, ...]:
    """The index (tuple) of the first True entry of ``mask``, in C order."""
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))


def check_finite(name: str, x: np.ndarray) -> None:
    """Refuse NaN or ±∞ in a float array, naming the example and the position inside it."""
    if not np.issubdtype(x.dtype, np.inexact):
        return
    bad = ~np.isfinite(x)
    if bad.any():
        idx = first_index(bad)
        inner = f" at position {idx[1:]}" if len(idx) > 1 else ""
        n_bad = int(bad.reshape(len(x), -1).any(axis=1).sum())
        raise ValueError(f"{name}[{idx[0]}] is not finite ({x[idx]}){inner}; "
                         f"{n_bad} of {len(x)} examples hold NaN or ±inf")


def check_labels(name: str, y: np.ndarray, n_classes: int) -> None:
    """Refuse labels that are not integers in 0..n_classes−1, naming the first wrong index."""
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}; "
                        f"convert with {name}.astype(np.int32)")
    bad = (y < 0) | (y >= n_classes)
    if bad.any():
        idx = first_index(bad)
        raise ValueError(f"{name}[{', '.join(map(str, idx))}] = {y[idx]} is not a class label: "
                         f"the model has n_classes={n_classes}, so labels must be in 0..{n_classes - 1}")


def check_examples(name: str, data: Any, n_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Check a pair ``data = (x, y)`` and return it as numpy arrays.

    x (N, ...) and y (N, ...) must have the same N; float features must be finite; with
    ``n_classes=K``, y must be integer labels in 0..K−1. Errors name ``name`` and the index.
    """
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError(f"{name} must be a pair (x, y) of arrays, got {type(data).__name__}")
    x, y = as_examples(f"{name} x", data[0]), as_examples(f"{name} y", data[1])
    if len(x) != len(y):
        raise ValueError(f"{name} has {len(x)} inputs but {len(y)} targets")
    check_finite(f"{name} x", x)
    check_finite(f"{name} y", y)
    if n_classes is not None:
        check_labels(f"{name} y", y, n_classes)
    return x, y
