"""BatchNorm population statistics: after recompute_batch_stats, the first BatchNorm holds the
exact mean and (biased) variance of its inputs over the whole data set, and a later one those of
its inputs as training-mode batches produce them, computed by hand in float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.nn import BatchNorm, Conv2D, Dense, relu, serial
from jdl.train import recompute_batch_stats


def bn_train(h, gamma, beta, eps=1e-5):
    """BatchNorm in training mode, by hand: (h − μ_B)/√(σ²_B + ε)·γ + β."""
    return (h - h.mean(0)) / np.sqrt(h.var(0) + eps) * gamma + beta


def test_population_statistics_of_two_batchnorms(key):
    x = np.random.default_rng(0).normal(size=(37, 5)).astype(np.float32) * 2.0 + 3.0  # 37 = 16 + 16 + 5: a smaller last batch
    model = serial(Dense(4), BatchNorm(momentum=0.9), relu, Dense(3), BatchNorm())
    params, state = model.init(jax.random.key(1), x)
    params["1_batchnorm"] = {"gamma": jnp.array([1.0, 2.0, 0.5, 1.5]), "beta": jnp.array([0.1, -0.2, 0.3, 0.0])}
    new = recompute_batch_stats(model, params, state, x, batch_size=16)

    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    h1 = x @ p["0_dense"]["w"] + p["0_dense"]["b"]  # the first BN's inputs: exact over the data
    np.testing.assert_allclose(new["1_batchnorm"]["mean"], h1.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(new["1_batchnorm"]["var"], h1.var(0), rtol=1e-4)
    h2 = np.concatenate([  # the second BN's inputs, batch by batch in training mode
        np.maximum(bn_train(h1[s:s + 16], p["1_batchnorm"]["gamma"], p["1_batchnorm"]["beta"]), 0)
        @ p["3_dense"]["w"] + p["3_dense"]["b"] for s in (0, 16, 32)])
    np.testing.assert_allclose(new["4_batchnorm"]["mean"], h2.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(new["4_batchnorm"]["var"], h2.var(0), rtol=1e-4)
    batch_means = np.mean([h1[s:s + 16].mean(0) for s in (0, 16, 32)], 0)
    assert not np.allclose(new["1_batchnorm"]["mean"], batch_means, rtol=1e-3)  # not a mean of means
    assert jax.tree.structure(new) == jax.tree.structure(state)


def test_convolutional_batchnorm_and_a_lone_last_example(key):
    x = jnp.asarray(np.random.default_rng(1).normal(size=(9, 5, 5, 2)) + 1.0, jnp.float32)  # 9 = 4 + 5: the lone ninth joins the second batch
    model = serial(Conv2D(3, 3), BatchNorm(momentum=0.5))
    params, state = model.init(jax.random.key(1), x)
    new = recompute_batch_stats(model, params, state, x, batch_size=4)
    h = np.asarray(model.children[0].apply(params["0_conv2d"], {}, x)[0], np.float64).reshape(-1, 3)
    np.testing.assert_allclose(new["1_batchnorm"]["mean"], h.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new["1_batchnorm"]["var"], h.var(0), rtol=1e-4)
    with pytest.raises(ValueError, match="recompute_batch_stats: the state has no BatchNorm layer"):
        recompute_batch_stats(Dense(2), *Dense(2).init(key, x[:, 0, 0]), x[:, 0, 0])
