import jax
import numpy as np

from experiments import bias_variance as bv
from experiments import bias_variance_mlp


def test_decomposition_matches_the_closed_form_and_sums_to_the_test_error():
    """The constant model (degree 0) predicts the training mean ȳ, so in closed form
    bias²(x) = f(x)² (E[ȳ] = E[f] = 0) and variance = (Var f + σ²)/n = (½ + σ²)/n; for every
    degree bias² + variance + σ² equals the directly measured test MSE up to Monte-Carlo error."""
    problem = bv.Problem(sigma=0.5, n_train=10, n_test=50)
    out = bv.polynomial_capacity(jax.random.key(0), problem, (0, 3, 9), n_sets=4000)
    grid = np.linspace(-1, 1, 50)
    np.testing.assert_allclose(out[0]["bias2"], np.mean(np.sin(np.pi * grid) ** 2), rtol=0.02)
    np.testing.assert_allclose(out[0]["variance"], (0.5 + 0.25) / 10, rtol=0.05)
    for d in (0, 3, 9):
        np.testing.assert_allclose(out[d]["sum"], out[d]["test_mse"], rtol=0.02)
    # growing capacity trades bias for variance
    assert out[3]["bias2"] < out[0]["bias2"] and out[9]["variance"] > out[3]["variance"] > 0
    assert out[9]["train_mse"] < out[3]["train_mse"] < out[0]["train_mse"]


def test_mlp_decomposition_sums_and_a_wider_net_has_less_bias():
    problem = bv.Problem(n_train=10, n_test=30)
    out = bias_variance_mlp.mlp_capacity(jax.random.key(1), problem, (1, 16), n_sets=100, steps=200)
    for w in (1, 16):
        np.testing.assert_allclose(out[w]["sum"], out[w]["test_mse"], rtol=0.05)
    assert out[16]["bias2"] < out[1]["bias2"]
