"""Input standardization, fitted on the training set and applied to every split as a function.

The course's input standardization: x' = (x − μ)/σ per feature, with μ and σ measured on the
TRAINING set only and then applied unchanged to validation and test data (measuring them on the
test set would leak it into training, and a lone test example has no statistics of its own):

    μ_j = 1/N Σ_i x_ij,   σ_j = √(1/N Σ_i (x_ij − μ_j)²)   (biased, as sklearn's StandardScaler)
    x'_ij = (x_ij − μ_j) / σ_j                               (σ_j = 1 where feature j is constant)

    mean, std = standardize.fit(x_train)
    x_train, x_test = standardize.apply(x_train, mean, std), standardize.apply(x_test, mean, std)

``axis`` chooses what one "feature" is: ``axis=0`` (the default) gives every entry of an example
its own μ, σ (sklearn's per-column scaling for (N, D) data, per pixel for images);
``axis=(0, 1, 2)`` gives one μ, σ per channel of NHWC images.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def fit(x: Any, axis: int | tuple[int, ...] = 0) -> tuple[np.ndarray, np.ndarray]:
    """μ and σ of ``x`` over ``axis`` (kept as size-1 axes, so they broadcast against any
    split), computed in float64 and returned in x's floating dtype; σ < 10·eps(float64) → 1.

    Shapes: x (N, ...) → mean, std of x's shape with the ``axis`` axes of size 1 and the
    leading (N) axis dropped when reduced, e.g. (N, D) → (D,), (N, H, W, C) with
    axis=(0, 1, 2) → (1, 1, C).
    """
    x = np.asarray(x)
    if x.ndim < 1 or x.shape[0] < 1:
        raise ValueError(f"standardize.fit: expected training data (N, ...) with N >= 1, got shape {x.shape}")
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    if 0 not in [a % x.ndim for a in axes]:
        raise ValueError(f"standardize.fit: axis must include 0 (the examples), got {axis!r}")
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=axes, keepdims=True)
    std = np.sqrt(np.mean(np.square(x64 - mean), axis=axes, keepdims=True))
    std = np.where(std < 10 * np.finfo(np.float64).eps, 1.0, std)
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
    return mean[0].astype(dtype), std[0].astype(dtype)


def apply(x: Any, mean: Any, std: Any) -> Any:
    """x' = (x − μ)/σ with the training set's μ, σ from ``fit``: pure, and works on numpy and
    JAX arrays alike (so it can run inside a jitted function).

    Shapes: x (N, ...) with mean, std broadcasting against one example (...).
    """
    if tuple(np.shape(mean)) != tuple(np.shape(std)) or np.ndim(mean) > np.ndim(x) - 1:
        raise ValueError(f"standardize.apply: mean {np.shape(mean)} and std {np.shape(std)} must be the "
                         f"statistics of one example of x {np.shape(x)}, as standardize.fit returns them")
    mean, std = _lead(mean, x), _lead(std, x)
    return (x - mean) / std


def invert(z: Any, mean: Any, std: Any) -> Any:
    """x = z·σ + μ, the inverse of ``apply`` (to show standardized images or predictions)."""
    return z * _lead(std, z) + _lead(mean, z)


def _lead(stat: Any, x: Any) -> Any:
    """``stat`` (...) with x's leading axes as size 1 (1, ..., ...): explicit broadcasting."""
    return stat.reshape((1,) * (np.ndim(x) - np.ndim(stat)) + tuple(np.shape(stat)))
