import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jdl
from jdl import regularizers
from jdl.losses import softmax_cross_entropy
from tests.helpers import assert_close, draw_normal


@pytest.fixture(scope="module")
def model_params():
    model = jdl.nn.serial(jdl.nn.Dense(4), jdl.nn.BatchNorm(), jdl.nn.relu, jdl.nn.Dense(3))
    x = draw_normal(jax.random.key(0), (8, 5))
    params, state = model.init(jax.random.key(1), x)
    params = jax.tree.map(lambda a: a + 0.1, params)  # biases and beta not zero
    return model, params, state, x


def test_penalties_cover_weights_only_by_default(model_params):
    _, params, _, _ = model_params
    w1, w2 = np.asarray(params["0_dense"]["w"]), np.asarray(params["3_dense"]["w"])
    np.testing.assert_allclose(regularizers.l2(params), 0.5 * ((w1 ** 2).sum() + (w2 ** 2).sum()), rtol=1e-6)
    np.testing.assert_allclose(regularizers.l1(params), np.abs(w1).sum() + np.abs(w2).sum(), rtol=1e-6)
    every = sum(np.abs(np.asarray(a)).sum() for a in jax.tree.leaves(params))
    np.testing.assert_allclose(regularizers.l1(params, regularizers.all_params), every, rtol=1e-6)


def test_penalty_gradients(model_params):
    _, params, _, _ = model_params
    g = jax.grad(regularizers.penalty(l1_coef=0.1, l2_coef=0.01))(params)
    for layer in ("0_dense", "3_dense"):
        w = params[layer]["w"]
        np.testing.assert_allclose(g[layer]["w"], 0.1 * jnp.sign(w) + 0.01 * w, rtol=1e-6)
        np.testing.assert_array_equal(g[layer]["b"], 0)  # biases are not penalized
    np.testing.assert_array_equal(g["1_batchnorm"]["gamma"], 0)
    assert float(regularizers.penalty()(params)) == 0.0
    with pytest.raises(ValueError, match="penalty: the coefficients must be >= 0"):
        regularizers.penalty(l2_coef=-1.0)


def test_l2_in_the_loss_with_sgd_equals_weight_decay(model_params):
    """The course's identity w ← (1 − ηλ)w − η∇L, checked against optax's add_decayed_weights."""
    model, params, state, x = model_params
    y = jnp.array([0, 1, 2, 0, 1, 2, 0, 1])
    lam, eta = 0.05, 0.1
    data_loss = lambda p: softmax_cross_entropy(model.apply(p, state, x, train=True)[0], y)
    g = jax.grad(lambda p: data_loss(p) + regularizers.penalty(l2_coef=lam)(p))(params)
    ours = jdl.optim.apply_updates(params, jdl.optim.sgd(eta).update(g, jdl.optim.sgd(eta).init(params), params)[0])
    mask = jax.tree_util.tree_map_with_path(lambda path, _: regularizers.weights_only(path, _), params)
    ref_opt = optax.chain(optax.add_decayed_weights(lam, mask=mask), optax.sgd(eta))
    updates, _ = ref_opt.update(jax.grad(data_loss)(params), ref_opt.init(params), params)
    assert_close(ours, optax.apply_updates(params, updates), rtol=1e-5, atol=1e-6)
