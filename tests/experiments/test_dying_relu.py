import jax
import numpy as np

import jdl
from experiments import dying_relu, regularized_boundaries


def test_pre_activations_rebuild_the_mlp_and_dead_units_are_counted_per_column():
    model = jdl.models.mlp([4, 3, 2])
    x = np.random.default_rng(0).normal(size=(6, 2)).astype(np.float32)
    params, state = model.init(jax.random.key(0), x)
    zs = dying_relu.pre_activations(params, x, jdl.nn.relu)
    assert [z.shape for z in zs] == [(6, 4), (6, 3)]
    last = [k for k in params if "w" in params[k]][-1]
    logits = np.maximum(zs[-1], 0) @ np.asarray(params[last]["w"]) + np.asarray(params[last]["b"])
    np.testing.assert_allclose(logits, model.apply(params, state, x)[0], rtol=1e-5, atol=1e-6)
    z = np.array([[-1.0, 0.5, 0.0], [-2.0, -1.0, 0.0]])  # column 0 and 2 dead, column 1 alive
    assert dying_relu.dead_fraction([z, np.ones((2, 1))]) == 0.5


def test_a_high_learning_rate_kills_relu_units(tmp_path):
    train, test = jdl.data.load("moons", "train"), jdl.data.load("moons", "test")
    low = dying_relu.train_one(jdl.nn.relu, 0.01, 1, 0, train, test)
    high = dying_relu.train_one(jdl.nn.relu, 1.0, 1, 0, train, test)
    assert high["dead_after"] > low["dead_after"] + 0.1


def test_bias_shift_lowers_only_hidden_biases():
    model = jdl.models.mlp([4, 3, 2])
    x = np.ones((1, 2), np.float32)
    plain, _ = model.init(jax.random.key(0), x)
    shifted, _ = dying_relu.shift_hidden_biases(model, 2.5).init(jax.random.key(0), x)
    keys = [k for k in plain if "w" in plain[k]]
    for k in keys[:-1]:
        np.testing.assert_allclose(shifted[k]["b"], np.asarray(plain[k]["b"]) - 2.5)
    np.testing.assert_array_equal(shifted[keys[-1]]["b"], plain[keys[-1]]["b"])


def test_clipping_keeps_elu_finite_where_plain_sgd_diverges():
    train, test = jdl.data.load("moons", "train"), jdl.data.load("moons", "test")
    plain = dying_relu.train_one(jdl.nn.elu, 3.0, 1, 0, train, test)
    clipped = dying_relu.train_one(jdl.nn.elu, 3.0, 1, 0, train, test, clip_norm=1.0)
    assert plain["diverged"] == 1.0 and clipped["diverged"] == 0.0


def test_noisy_moons_jitter_has_the_stated_spread():
    (x, y), val, test = regularized_boundaries.noisy_moons(0, n_train=60, jitter=0.25)
    assert x.shape == (60, 2) and val[0].shape == (80, 2) and test[0].shape == (200, 2)
    clean = jdl.data.load("moons", "test")[0]
    np.testing.assert_allclose(np.std(test[0] - clean), 0.25, rtol=0.15)
