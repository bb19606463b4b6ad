"""The course's momentum forms take the same steps as optax's trace form."""

import jax
import jax.numpy as jnp
import optax

from jdl import optim
from tests.helpers import assert_close
from tests.optim.conftest import params_and_grads, run_steps


def test_velocity_form_equals_trace_form():
    """m ← μ·m − α·g; w ← w + m  ≡  t ← g + μ·t; w ← w − α·t  (constant α)."""
    params, grads = params_and_grads("nested")
    course = run_steps(optim.scale_by_velocity(0.05, 0.9), params, grads)
    assert_close(course, run_steps(optim.sgd(0.05, momentum=0.9), params, grads), rtol=1e-5, atol=1e-5)
    assert_close(course, run_steps(optax.sgd(0.05, momentum=0.9), params, grads), rtol=1e-5, atol=1e-5)


def test_velocity_form_differs_under_a_schedule():
    """With a schedule the velocity keeps each step's own α; the trace is rescaled by today's η."""
    params, grads = params_and_grads("dense")
    lr = optim.exponential_decay(0.1, 1, 0.5)
    a = run_steps(optim.scale_by_velocity(lr, 0.9), params, grads)
    b = run_steps(optim.sgd(lr, momentum=0.9), params, grads)
    assert not jnp.allclose(a["w"], b["w"], atol=1e-3)


def test_ema_form_is_trace_form_with_scaled_rate():
    """v ← β·v + (1−β)·g; w ← w − η·v  ≡  sgd(η·(1−β), momentum=β)."""
    params, grads = params_and_grads("dense")
    assert_close(run_steps(optim.momentum_ema(0.1, beta=0.8), params, grads),
                 run_steps(optim.sgd(0.1 * 0.2, momentum=0.8), params, grads), rtol=1e-5, atol=1e-5)


def test_nesterov_look_ahead_form_equals_optax_form():
    """Sutskever's Nesterov: m ← μ·m − α·∇ℓ(w + μ·m); w ← w + m. Its look-ahead point w + μ·m
    follows exactly the iterates of optax's t ← g + μ·t; w ← w − α·(g + μ·t)."""
    a = jnp.array([[3.0, 0.5], [0.5, 1.0]])
    loss = lambda w: 0.5 * w @ a @ w - w[0]
    alpha, mu = 0.1, 0.9
    w, m = jnp.array([2.0, -1.0]), jnp.zeros(2)
    look_ahead = []
    for _ in range(30):
        m = mu * m - alpha * jax.grad(loss)(w + mu * m)
        w = w + m
        look_ahead.append(w + mu * m)
    opt = optim.sgd(alpha, momentum=mu, nesterov=True)
    x, state = jnp.array([2.0, -1.0]), opt.init(jnp.zeros(2))
    for expected in look_ahead:
        u, state = opt.update(jax.grad(loss)(x), state)
        x = optim.apply_updates(x, u)
        assert_close(x, expected, rtol=1e-5, atol=1e-6)
