import jax
import jax.numpy as jnp
import optax
import pytest

from jdl import optim
from tests.helpers import assert_close, draw_normal

PARAMS = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}


def random_grads(i):
    k = jax.random.key(i)
    return {"w": draw_normal(k, (3, 2)), "b": draw_normal(jax.random.fold_in(k, 1), (2,))}


def run(opt, steps=100, params=PARAMS):
    state = opt.init(params)
    update = jax.jit(opt.update)
    for i in range(steps):
        updates, state = update(random_grads(i), state, params)
        params = optim.apply_updates(params, updates)
    return params


@pytest.mark.parametrize("lr", [0.1, optax.exponential_decay(0.1, 10, 0.5)])
def test_sgd_equals_optax_for_100_steps(lr):
    assert_close(run(optim.sgd(lr)), run(optax.sgd(lr)), rtol=1e-6, atol=1e-7)


def test_interop_with_optax():
    """jdl updates work with optax.apply_updates, and optax transforms chain into jdl's chain."""
    g = random_grads(0)
    u, _ = optim.sgd(0.1).update(g, optim.sgd(0.1).init(PARAMS))
    assert_close(optax.apply_updates(PARAMS, u), optim.apply_updates(PARAMS, u))
    mixed = optim.chain(optax.scale(2.0), optim.scale(-0.05))
    u2, _ = mixed.update(g, mixed.init(PARAMS))
    assert_close(u2, jax.tree.map(lambda x: -0.1 * x, g))


def test_sgd_converges_on_parabola():
    opt = optim.sgd(0.1)
    x = jnp.array([3.0, -2.0])
    state = opt.init(x)
    for _ in range(100):
        u, state = opt.update(jax.grad(lambda x: jnp.sum(x ** 2))(x), state)
        x = optim.apply_updates(x, u)
    assert float(jnp.max(jnp.abs(x))) < 1e-6


def test_negative_learning_rate_raises():
    with pytest.raises(ValueError, match="sgd: learning_rate must be a finite number >= 0"):
        optim.sgd(-0.1)
