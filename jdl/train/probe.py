"""The linear probe: how much of a frozen encoder's knowledge is linearly readable. A softmax
regression on its features is trained with ``fit`` for each L2 strength, the strength (and the
epoch, by early stopping) chosen on validation accuracy, and the chosen classifier scored once
on the test set."""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from jdl import optim
from jdl.losses import softmax_cross_entropy
from jdl.nn.linear import Dense
from jdl.regularizers import l2
from jdl.train.evaluate import evaluate, make_eval_step
from jdl.train.fit import fit

Split = tuple[np.ndarray, np.ndarray]


class ProbeResult(NamedTuple):
    """The chosen L2 strength, the validation accuracy of every strength tried (in order), the
    chosen classifier's validation and test accuracy, and its epoch (early stopping)."""

    l2: float
    validation_accuracies: list[float]
    validation_accuracy: float
    test_accuracy: float
    best_epoch: int


def standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """(f − μ)/σ with μ, σ per feature from the training features only (σ floored at 1e-6, so
    a dead feature stays 0). Shapes: (N, D) each → (N, D) each."""
    mu, sd = train.mean(0), np.maximum(train.std(0), 1e-6)
    return [((f - mu) / sd).astype(np.float32) for f in (train, *others)]


def linear_probe(train: Split, validation: Split, test: Split, l2s: Sequence[float] = (0.0, 1e-3, 1e-2, 1e-1),
                 epochs: int = 100, batch_size: int = 128, lr: float = 1e-2, patience: int = 20,
                 seed: int = 0) -> ProbeResult:
    """Fit p(y | f) = softmax(W f + b) on standardized frozen features f:

        min_{W,b}  (1/N) Σ_i CE(softmax(W f_i + b), y_i) + λ/2·‖W‖²

    with Adam(lr) minibatches, for each λ in ``l2s``; each run keeps its best epoch by
    validation accuracy (early stopping, ``patience`` epochs), the λ with the highest
    validation accuracy is chosen (ties: the first), and only that classifier meets the test set.

    Shapes: each split (features (N, D), labels (N,) int) → ``ProbeResult``.
    """
    (f_tr, y_tr), (f_va, y_va), (f_te, y_te) = train, validation, test
    f_tr, f_va, f_te = standardize(f_tr, f_va, f_te)
    k = int(max(y_tr.max(), y_va.max(), y_te.max())) + 1
    model, runs = Dense(k), []
    for lam in l2s:
        penalty = (lambda p, lam=lam: lam * l2(p)) if lam else None
        result = fit(model, softmax_cross_entropy, optim.adam(lr), (f_tr, y_tr), (f_va, y_va), epochs=epochs,
                     batch_size=batch_size, seed=seed, progress=False, penalty=penalty,
                     early_stopping_patience=patience, early_stopping_metric="validation_accuracy")
        best = max(result.history, key=lambda r: r["validation_accuracy"])  # first of the best
        runs.append((best["validation_accuracy"], best["epoch"], result.train_state))
    chosen = int(np.argmax([acc for acc, _, _ in runs]))
    val_acc, epoch, ts = runs[chosen]
    test = evaluate(make_eval_step(model, softmax_cross_entropy), ts.params, ts.state, f_te, y_te)
    return ProbeResult(float(l2s[chosen]), [acc for acc, _, _ in runs], float(val_acc), test["accuracy"], int(epoch))
