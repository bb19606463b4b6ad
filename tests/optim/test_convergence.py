"""Each optimizer converges on a parabola and on Rosenbrock under jit, and its update does not
recompile on the second call (optax's own checks)."""

import jax
import jax.numpy as jnp
import pytest

from jdl import optim


def parabola(x):
    return jnp.sum(jnp.square(x - jnp.array([1.0, -2.0])))


def rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def minimize(opt, f, x0, steps):
    def body(carry, _):
        x, s = carry
        u, s = opt.update(jax.grad(f)(x), s, x)
        return (optim.apply_updates(x, u), s), None

    (x, _), _ = jax.jit(lambda x: jax.lax.scan(body, (x, opt.init(x)), None, length=steps))(x0)
    return x


# (optimizer on the parabola, optimizer on Rosenbrock)
OPTIMIZERS = {
    "sgd": (optim.sgd(0.1), optim.sgd(1e-3)),
    "momentum": (optim.sgd(0.05, momentum=0.9), optim.sgd(1e-3, momentum=0.9)),
    "nesterov": (optim.sgd(0.05, momentum=0.9, nesterov=True), optim.sgd(1e-3, momentum=0.9, nesterov=True)),
    "momentum_ema": (optim.momentum_ema(0.3), optim.momentum_ema(1e-2)),
    "adagrad": (optim.adagrad(1.0), optim.adagrad(0.5)),
    "rmsprop": (optim.rmsprop(optim.exponential_decay(0.1, 100, 0.5)),
                optim.rmsprop(optim.cosine_decay_schedule(3e-3, 10_000))),
    "rmsprop_centered": (optim.rmsprop(optim.exponential_decay(0.1, 100, 0.5), centered=True),
                         optim.rmsprop(optim.cosine_decay_schedule(3e-3, 10_000), centered=True)),
    "adam": (optim.adam(0.1), optim.adam(3e-2)),
    "adamw": (optim.adamw(0.1, weight_decay=0.0), optim.adamw(3e-2, weight_decay=0.0)),
    "adam_l2": (optim.adam_l2(0.1, weight_decay=0.0), optim.adam_l2(3e-2, weight_decay=0.0)),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_converges_on_parabola_and_rosenbrock(name):
    on_parabola, on_rosenbrock = OPTIMIZERS[name]
    x = minimize(on_parabola, parabola, jnp.array([3.0, 2.0]), 1000)
    assert jnp.allclose(x, jnp.array([1.0, -2.0]), atol=1e-2), x
    x = minimize(on_rosenbrock, rosenbrock, jnp.array([-1.2, 1.0]), 20_000)  # the valley is slow, and how slow depends on rounding (FMA or not)
    assert jnp.allclose(x, jnp.ones(2), atol=2e-2), x


@pytest.mark.parametrize("name", [*sorted(OPTIMIZERS), "clip+adamw+cosine"])
def test_update_does_not_recompile(name):
    traces = []
    opt = (OPTIMIZERS[name][0] if name in OPTIMIZERS else
           optim.chain(optim.clip_by_global_norm(1.0), optim.adamw(optim.cosine_decay_schedule(0.1, 10))))

    @jax.jit
    def step(params, state, grads):
        traces.append(1)  # runs only while tracing
        updates, state = opt.update(grads, state, params)
        return optim.apply_updates(params, updates), state

    params = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}
    state = opt.init(params)
    for i in range(3):
        params, state = step(params, state, jax.tree.map(lambda p: p * (i + 1), params))
    assert len(traces) == 1
