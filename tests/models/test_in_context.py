import jax
import numpy as np
import pytest

from jdl.data.linear_functions import linear_function_prompts
from jdl.models.in_context import (
    averaging_predictions, least_squares_predictions, nearest_neighbour_predictions,
)
from tests.helpers import draw_normal


@pytest.fixture(scope="module")
def prompts():
    xs, ys, _ = linear_function_prompts(jax.random.key(3), 3, 9, 4)
    return np.asarray(xs), np.asarray(ys + 0.1 * draw_normal(jax.random.key(4), ys.shape))  # noisy y


def test_least_squares_is_numpys_min_norm_lstsq_on_each_prefix(prompts):
    xs, ys = prompts
    pred = np.asarray(least_squares_predictions(xs, ys))
    for b in range(3):
        assert pred[b, 0] == 0
        for i in range(1, 9):  # under- (i < d), exactly (i = d) and over-determined prefixes
            w, *_ = np.linalg.lstsq(xs[b, :i].astype(np.float64), ys[b, :i].astype(np.float64), rcond=None)
            np.testing.assert_allclose(pred[b, i], xs[b, i] @ w, rtol=2e-3, atol=2e-3)


def test_averaging_is_the_mean_of_y_x(prompts):
    xs, ys = prompts
    pred = np.asarray(averaging_predictions(xs, ys))
    for b in range(3):
        for i in range(1, 9):
            w = np.mean(ys[b, :i, None] * xs[b, :i], axis=0)
            np.testing.assert_allclose(pred[b, i], xs[b, i] @ w, rtol=1e-5, atol=1e-5)
    assert np.all(pred[:, 0] == 0)


def test_nearest_neighbours_average_the_closest_earlier_ys(prompts):
    xs, ys = prompts
    pred = np.asarray(nearest_neighbour_predictions(xs, ys, k=3))
    for b in range(3):
        for i in range(1, 9):
            order = np.argsort(np.sum((xs[b, :i] - xs[b, i]) ** 2, axis=1))[:3]
            np.testing.assert_allclose(pred[b, i], ys[b, order].mean(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="k must be a positive int"):
        nearest_neighbour_predictions(xs, ys, k=0)
