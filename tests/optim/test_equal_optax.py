"""Every jdl optimizer takes the same 100 steps as its optax twin, on several pytrees, with and
without a learning-rate schedule (float32, relative error under 1e-6)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jdl import optim
from tests.helpers import assert_close
from tests.optim.conftest import run_steps

SCHEDULE = (optim.schedules.exponential_decay(0.05, 10, 0.7), optax.exponential_decay(0.05, 10, 0.7))

# name -> function (lib, lr) -> optimizer; lib is jdl.optim or optax
PAIRS = {
    "sgd": lambda o, lr: o.sgd(lr),
    "sgd_momentum": lambda o, lr: o.sgd(lr, momentum=0.9),
    "sgd_nesterov": lambda o, lr: o.sgd(lr, momentum=0.9, nesterov=True),
    "adagrad": lambda o, lr: o.adagrad(lr),
    "rmsprop": lambda o, lr: o.rmsprop(lr),
    "rmsprop_centered": lambda o, lr: o.rmsprop(lr, decay=0.8, centered=True),
    "rmsprop_momentum": lambda o, lr: o.rmsprop(lr, momentum=0.5, eps_in_sqrt=False),
    "adam": lambda o, lr: o.adam(lr),
    "adam_b1_0.5": lambda o, lr: o.adam(lr, b1=0.5, b2=0.9, eps=1e-6),
    # the review slides' m̂/√(v̂ + ε) is optax's eps_root=ε with eps=0
    "adam_eps_in_sqrt": lambda o, lr: (o.adam(lr, eps=1e-3, eps_in_sqrt=True) if o is optim
                                       else o.adam(lr, eps=0.0, eps_root=1e-3)),
    "adamw": lambda o, lr: o.adamw(lr, weight_decay=0.1),
    "adam_l2": lambda o, lr: (o.adam_l2(lr, weight_decay=0.1) if o is optim
                              else o.chain(o.add_decayed_weights(0.1), o.adam(lr))),
    "momentum_ema": lambda o, lr: (o.momentum_ema(lr, 0.8) if o is optim
                                   else o.chain(o.ema(0.8, debias=False), o.scale_by_learning_rate(lr))),
    "clip_global_norm_adam": lambda o, lr: o.chain(o.clip_by_global_norm(2.0), o.adam(lr)),
    "clip_sgd": lambda o, lr: o.chain(o.clip(0.5), o.sgd(lr)),
}


@pytest.mark.parametrize("scheduled", [False, True], ids=["constant", "schedule"])
@pytest.mark.parametrize("name", sorted(PAIRS))
def test_100_steps_equal_optax(name, scheduled, tree):
    params, grads = tree
    lr_jdl, lr_optax = SCHEDULE if scheduled else (0.05, 0.05)
    ours = run_steps(PAIRS[name](optim, lr_jdl), params, grads)
    theirs = run_steps(PAIRS[name](optax, lr_optax), params, grads, apply=optax.apply_updates)
    assert_close(ours, theirs, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mask", [None, optim.weights_only])
def test_add_decayed_weights_equals_optax(mask, tree):
    params, grads = tree
    ours = run_steps(optim.chain(optim.add_decayed_weights(0.3, mask), optim.sgd(0.05)), params, grads)
    theirs = run_steps(optax.chain(optax.add_decayed_weights(0.3, mask), optax.sgd(0.05)), params, grads)
    assert_close(ours, theirs, rtol=1e-6, atol=1e-6)


def _rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def _five_steps(opt, apply, jit):
    """5 steps on Rosenbrock from (0, 0), each step eager or jitted; returns the final x."""
    def step(x, s):
        u, s = opt.update(jax.grad(_rosenbrock)(x), s, x)
        return apply(x, u), s

    step = jax.jit(step) if jit else step
    x = jnp.zeros([2], jnp.float32)
    s = opt.init(x)
    for _ in range(5):
        x, s = step(x, s)
    return np.asarray(x)


ADAMS = {"adam": lambda o: o.adam(1e-3), "adamw": lambda o: o.adamw(1e-3, weight_decay=0.1)}


@pytest.mark.parametrize("name", sorted(ADAMS))
def test_adam_same_eager_and_jitted(name):
    """The bias correction 1 − β^t rounds the same eager and jitted: with an int32 count, eager
    β^t once rounded differently, and x after 5 steps differed by 5.7e-5 relative. Now eager,
    jitted and optax (eager and jitted) agree to 1e-8 relative, i.e. bit for bit in float32."""
    eager = _five_steps(ADAMS[name](optim), optim.apply_updates, jit=False)
    jitted = _five_steps(ADAMS[name](optim), optim.apply_updates, jit=True)
    for theirs in (_five_steps(ADAMS[name](optax), optax.apply_updates, jit=jit) for jit in (False, True)):
        np.testing.assert_allclose(eager, theirs, rtol=1e-8, atol=0)
    np.testing.assert_allclose(eager, jitted, rtol=1e-8, atol=0)


COMPLEX = {"adagrad": lambda o: o.adagrad(0.1), "adam": lambda o: o.adam(0.1),
           "adamw": lambda o: o.adamw(0.1, weight_decay=0.1), "rmsprop": lambda o: o.rmsprop(0.1),
           "rmsprop_centered": lambda o: o.rmsprop(0.1, centered=True)}


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("name", sorted(COMPLEX))
def test_complex_params_equal_optax(name, jit):
    """On complex params the second moment is |g|² = g·ḡ (real), not g² (as optax)."""
    rng = np.random.default_rng(0)
    params = jnp.asarray(rng.normal(size=(3,)) + 1j * rng.normal(size=(3,)), jnp.complex64)
    grads = jnp.asarray(rng.normal(size=(5, 3)) + 1j * rng.normal(size=(5, 3)), jnp.complex64)

    def steps(opt, apply):
        update = jax.jit(opt.update) if jit else opt.update
        p, s = params, opt.init(params)
        for g in grads:
            u, s = update(g, s, p)
            p = apply(p, u)
        return p

    ours = steps(COMPLEX[name](optim), optim.apply_updates)
    theirs = steps(COMPLEX[name](optax), optax.apply_updates)
    assert ours.dtype == jnp.complex64
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-6, atol=1e-6)
