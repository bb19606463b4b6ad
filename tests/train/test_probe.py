"""The linear probe: it picks the L2 strength by validation accuracy and scores as well as
scikit-learn's logistic regression on the same standardized features."""

import numpy as np

from jdl import data
from jdl.train.probe import linear_probe, standardize


def test_standardize_uses_the_training_statistics():
    tr, te = np.array([[0.0, 1.0], [2.0, 1.0]]), np.array([[4.0, 3.0]])
    a, b = standardize(tr, te)
    np.testing.assert_allclose(a, [[-1, 0], [1, 0]])  # a constant feature stays 0
    np.testing.assert_allclose(b, [[3, 2e6]])


def test_probe_on_digit_pixels_matches_sklearn_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    splits = [data.load("digits", s) for s in ("train", "validation", "test")]
    (xtr, ytr), (xva, yva), (xte, yte) = [(x.reshape(len(x), -1), y) for x, y in splits]
    l2s = (0.0, 1.0)  # λ = 1 shrinks W far too much: validation must reject it
    r = linear_probe((xtr, ytr), (xva, yva), (xte, yte), l2s, epochs=40, patience=10)
    assert len(r.validation_accuracies) == 2 and r.l2 == 0.0
    assert r.validation_accuracies[0] > r.validation_accuracies[1]
    assert r.validation_accuracy == max(r.validation_accuracies)
    ftr, fte = standardize(xtr, xte)
    ref = LogisticRegression(C=1.0, max_iter=2000).fit(ftr, ytr).score(fte, yte)
    assert abs(r.test_accuracy - ref) < 0.03 and r.test_accuracy > 0.9
