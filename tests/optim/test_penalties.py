"""Penalty gradients equal jax.grad of the penalty; weight decay with a mask; bad input."""

import jax
import jax.numpy as jnp
import optax
import pytest

from jdl import optim
from tests.helpers import assert_close

PARAMS = {"0_dense": {"w": jnp.array([[0.5, -1.5], [2.0, -0.25]]), "b": jnp.array([0.3, -0.7])},
          "1_dense": {"w": jnp.array([[1.0], [-3.0]]), "b": jnp.array([0.1])}}
GRADS = jax.tree.map(lambda p: 0.1 * jnp.ones_like(p), PARAMS)


def penalty_grad(penalty, params):
    return jax.tree.map(jnp.add, GRADS, jax.grad(penalty)(params))


def test_l2_penalty_is_the_gradient_of_half_squared_norm():
    l2 = lambda p: 0.3 / 2 * sum(jnp.sum(x ** 2) for x in jax.tree.leaves(p))
    u, _ = optim.add_l2_penalty(0.3).update(GRADS, optim.EmptyState(), PARAMS)
    assert_close(u, penalty_grad(l2, PARAMS))


def test_l1_penalty_is_the_subgradient_of_l1_norm_on_weights_only():
    l1 = lambda p: 0.2 * sum(jnp.sum(jnp.abs(p[k]["w"])) for k in p)
    u, _ = optim.add_l1_penalty(0.2, mask=optim.weights_only).update(GRADS, optim.EmptyState(), PARAMS)
    assert_close(u, penalty_grad(l1, PARAMS))
    assert_close(u["0_dense"]["b"], GRADS["0_dense"]["b"])  # biases untouched


def test_sgd_weight_decay_shrinks_weights_by_one_minus_eta_lambda():
    """θ ← (1 − ηλ)·θ − η·g, the course's "weight decay"."""
    opt = optim.chain(optim.add_decayed_weights(0.5), optim.sgd(0.1))
    u, _ = opt.update(GRADS, opt.init(PARAMS), PARAMS)
    assert_close(optim.apply_updates(PARAMS, u),
                 jax.tree.map(lambda p, g: (1 - 0.05) * p - 0.1 * g, PARAMS, GRADS))


def test_adamw_differs_from_adam_l2():
    """AdamW decays θ outside the moments; Adam + L2 sends λθ through them."""
    p, g = PARAMS, GRADS
    results = []
    for opt in (optim.adamw(0.1, weight_decay=0.5), optim.adam_l2(0.1, weight_decay=0.5)):
        u, _ = opt.update(g, opt.init(p), p)
        results.append(u["0_dense"]["w"])
    assert not jnp.allclose(*results, atol=1e-3)
    twin, _ = optax.adamw(0.1, weight_decay=0.5).update(g, optax.adamw(0.1).init(p), p)
    assert_close(results[0], twin["0_dense"]["w"], rtol=1e-6)


@pytest.mark.parametrize("make", [lambda: optim.add_decayed_weights(0.1), lambda: optim.adamw(1e-3),
                                  lambda: optim.add_l1_penalty(0.1)])
def test_needs_params(make):
    opt = make()
    with pytest.raises(ValueError, match=r"update needs the params .*update\(grads, opt_state, params\)"):
        opt.update(GRADS, opt.init(PARAMS))


def test_mask_with_another_structure_is_refused():
    opt = optim.add_decayed_weights(0.1, mask={"w": True})
    with pytest.raises(ValueError, match="the mask's structure differs from the params'"):
        opt.update(GRADS, opt.init(PARAMS), PARAMS)
