"""Holding out part of a data set: a seeded split, stratified by class when y is integer labels.

The course's discipline: choose hyper-parameters (and early stopping's epoch) on a validation
set carved from the training data, and look at the test set once. ``split`` does the carving;
``jdl.data.load(name, 'validation')`` uses it on every data set with seed 0.
"""

from __future__ import annotations

import numpy as np


def held_counts(counts: np.ndarray, n_held: int) -> np.ndarray:
    """How many of each class to hold out: n_held shared in proportion to ``counts``.

    Each class gets ⌊n_c · n_held / N⌋, and the examples that leaves over go one each to the
    classes with the largest remainders (n_c · n_held mod N), ties to the lower class (Hamilton's
    largest-remainder method), so the counts add up to n_held exactly and never exceed n_c.
    """
    n = int(counts.sum())
    quota, remainder = np.divmod(counts * n_held, n)
    left = n_held - int(quota.sum())
    quota[np.argsort(-remainder, kind="stable")[:left]] += 1
    return quota


def split(x, y, fraction: float, seed: int = 0):
    """Split (x, y) into a rest and a held-out part of round(fraction·N) examples.

    When ``y`` is a 1-D array of integer labels the split is stratified: class c with n_c examples
    puts about n_c · fraction of them in the held-out part (exactly n_c·n_held/N, rounded by the
    largest-remainder rule so the parts have round(fraction·N) and N − round(fraction·N)
    examples), chosen by a seeded permutation within the class. Otherwise (float targets,
    one-hot or multi-dimensional y) the held-out examples are a plain seeded random subset. The
    same seed gives the same split on every machine; each part keeps the examples in their
    original order. ``round`` is Python's (halves to even).

    Shapes:
        x (N, ...), y (N, ...) → x_rest (N − M, ...), y_rest (N − M, ...), x_held (M, ...),
        y_held (M, ...), with M = round(fraction · N).

    Args:
        x: inputs, any array indexable by an integer array along axis 0 (numpy or jax).
        y: targets, N along axis 0; integer labels of shape (N,) are stratified by class.
        fraction: the share to hold out, in [0, 1); 0 holds out nothing.
        seed: seed of the choice (numpy's default_rng).

    Returns:
        ((x_rest, y_rest), (x_held, y_held)).

    Raises:
        ValueError: fraction outside [0, 1), x and y of different lengths, or (stratified) a
            part that would hold fewer examples than there are classes.

    >>> x, y = np.arange(10)[:, None], np.array([0] * 6 + [1] * 4)
    >>> (x_rest, y_rest), (x_held, y_held) = split(x, y, 0.5)
    >>> x_rest.shape, x_held.shape, np.bincount(y_held).tolist()
    ((5, 1), (5, 1), [3, 2])
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"jdl.data.split: fraction must lie in [0, 1), got {fraction}; "
                         "e.g. split(x, y, 0.1) holds out 10 %")
    n = len(x)
    if len(y) != n:
        raise ValueError(f"jdl.data.split: x has {n} examples but y has {len(y)}; they must match along axis 0")
    n_held = round(fraction * n)
    labels = np.asarray(y)
    rng = np.random.default_rng(seed)
    held = np.zeros(n, dtype=bool)
    if labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer):
        classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        if n_held and min(n_held, n - n_held) < len(classes):
            raise ValueError(f"jdl.data.split: {n} examples with fraction {fraction} leave {n - n_held} to keep "
                             f"and {n_held} to hold out, fewer than the {len(classes)} classes in y; "
                             "a stratified split needs at least one example per class in each part")
        for c, k in enumerate(held_counts(counts, n_held)):
            members = np.flatnonzero(inverse == c)
            held[rng.permutation(members)[:k]] = True
    else:
        held[rng.permutation(n)[:n_held]] = True
    rest_idx, held_idx = np.flatnonzero(~held), np.flatnonzero(held)
    return (x[rest_idx], y[rest_idx]), (x[held_idx], y[held_idx])
