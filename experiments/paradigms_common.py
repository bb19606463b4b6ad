"""What the learning-paradigm experiments (semi-supervised, active, noisy labels) share: the
digits splits, one classifier trained with ``jdl.train.fit`` for a number of steps, and its
class probabilities on a pool of unlabelled examples.

The classifier is an MLP 64 → 128 → 10 trained with Adam; every choice (early stopping's epoch)
is made on the 144 validation digits, and the 360 test digits are measured once per fit.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import numpy as np

HIDDEN = 128


def digits_splits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The built-in digits: 'train' (1,293), 'validation' (144), 'test' (360)."""
    from jdl import data

    return {split: data.load("digits", split) for split in ("train", "validation", "test")}


def classifier():
    """The model every paradigm trains: ``mlp([128, 10])`` on the flattened 8×8 digit."""
    import jdl

    return jdl.models.mlp([HIDDEN, 10])


def train_classifier(train: tuple, validation: tuple, test: tuple, *, seed: int, steps: int,
                     loss: Callable | None = None, batch_size: int = 32, learning_rate: float = 3e-3,
                     patience: int | None = None, metric: str = "validation_accuracy",
                     augment: Callable | None = None, test_every_epoch: bool = False) -> Any:
    """``fit`` the classifier on ``train`` for about ``steps`` Adam steps (whole epochs of
    min(batch_size, N) examples), validating every epoch and, with ``patience``, early-stopping
    on ``metric`` (the best epoch's params come back), ``augment(key, x_b)`` in the step; ``test`` is measured once, at the end
    (and every epoch, for curves only, with ``test_every_epoch``).

    Returns: ``FitResult(train_state, history, test)``.
    """
    import jdl
    from jdl.losses import softmax_cross_entropy
    from jdl.train import fit

    train = repeated(train, 10 * batch_size)
    n = len(train[0])
    epochs = max(1, math.ceil(steps / max(1, n // min(batch_size, n))))
    return fit(classifier(), loss or softmax_cross_entropy, jdl.optim.adam(learning_rate), train, validation,
               test_data=test, epochs=epochs, batch_size=batch_size, seed=seed, progress=False,
               early_stopping_patience=patience, early_stopping_metric=metric, on_nonfinite=None,
               tensorboard=False, augment=augment,
               test_every_epoch=test_every_epoch)


def repeated(data: tuple, minimum: int) -> tuple:
    """(x, y) repeated whole until it holds at least ``minimum`` examples, so that a tiny
    labelled set still makes epochs of several steps (each epoch costs a validation pass)."""
    reps = max(1, math.ceil(minimum / len(data[0])))
    return tuple(np.concatenate([a] * reps) for a in data) if reps > 1 else data


def probabilities(train_state: Any, x: np.ndarray) -> np.ndarray:
    """softmax(f_θ(x)) of a trained classifier in evaluation mode. Shapes: x (N, 8, 8, 1) → (N, 10)."""
    logits, _ = classifier().apply(train_state.params, train_state.state, x)
    return np.asarray(jax.nn.softmax(logits, axis=-1))


def mean_std(values: list[float]) -> dict[str, float]:
    """{'mean', 'std', 'runs'} of a list of per-seed numbers."""
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "runs": [float(v) for v in values]}
