"""Rprop step for step against optax.rprop and torch.optim.Rprop; SGDR (cosine with warm
restarts) against optax.sgdr_schedule and torch's CosineAnnealingWarmRestarts."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jdl import optim
from jdl.optim import schedules as S


def updates_and_states(opt, grads):
    """(u_t, state_t) for a stacked gradient sequence, under ``lax.scan``."""

    def body(state, g):
        u, state = opt.update(g, state)
        return state, (u, state)

    return jax.lax.scan(body, opt.init(jax.tree.map(lambda a: a[0], grads)), grads)[1]


def test_rprop_equals_optax_step_for_step():
    """optax's state holds Δ_t (``step_sizes``) and this step's update Δ_t·sign(g_t), zeroed on a
    flip (``prev_updates``); ours must equal both at every step. (optax's *returned* update is
    last step's — google-deepmind/optax PR #1725 — so the updates are compared through the state.)"""
    rng = np.random.default_rng(3)
    a = rng.normal(size=(30, 3, 4)) * (rng.uniform(size=(30, 3, 4)) > 0.1)  # some exact 0s
    b = np.where(np.arange(5) < 2, 1.0, np.sign(rng.normal(size=(30, 5))))  # the first 2 keep their sign
    grads = {"a": jnp.asarray(a, jnp.float32), "b": jnp.asarray(b, jnp.float32)}
    args = dict(learning_rate=0.01, eta_minus=0.4, eta_plus=1.3, min_step_size=1e-3, max_step_size=0.05)
    (u, ours), (_, theirs) = jax.jit(lambda g: (updates_and_states(optim.rprop(**args), g),
                                                updates_and_states(optax.scale_by_rprop(**args), g)))(grads)
    for k in grads:
        np.testing.assert_allclose(ours.delta[k], theirs.step_sizes[k], rtol=1e-6)
        np.testing.assert_allclose(-u[k], theirs.prev_updates[k], rtol=1e-6)
    assert float(jnp.max(ours.delta["b"])) == pytest.approx(0.05)  # the bounds were reached
    assert float(jnp.min(ours.delta["a"])) == pytest.approx(1e-3)


@pytest.mark.torch
def test_rprop_equals_torch():
    torch = pytest.importorskip("torch")
    x = torch.tensor([-1.2, 0.5], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Rprop([x], lr=0.01, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0))
    f = lambda x: ((1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2)
    ours = optim.rprop(0.01)
    p = jnp.array([-1.2, 0.5])
    state = ours.init(p)
    grad = jax.grad(lambda p: (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2)
    step = jax.jit(lambda p, state: ours.update(grad(p), state))
    for t in range(30):
        opt.zero_grad()
        f(x).backward()
        opt.step()
        u, state = step(p, state)
        p = p + u
        np.testing.assert_allclose(p, x.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=f"step {t}")


def test_rprop_rule_on_one_coordinate():
    """Δ grows by η⁺ while the sign holds, shrinks by η⁻ and no step is taken on a flip, and
    the step after a flip keeps Δ (iRprop⁻)."""
    opt = optim.rprop(1.0, eta_minus=0.5, eta_plus=2.0)
    state = opt.init(jnp.zeros(1))
    steps = []
    for g in (1.0, 1.0, -1.0, -1.0, -1.0):
        u, state = opt.update(jnp.array([g]), state)
        steps.append(float(u[0]))
    assert steps == [-1.0, -2.0, 0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="scale_by_rprop: need 0 < eta_minus < 1 < eta_plus"):
        optim.rprop(0.1, eta_minus=1.5)


def test_a_none_gradient_leaf_keeps_its_param_and_state():
    params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
    for opt in (optim.rprop(0.1), optim.centralize()):
        state = opt.init(params)
        u, new_state = opt.update({"w": jnp.ones((2, 3)), "b": None}, state)
        assert u["b"] is None and jax.tree.structure(new_state) == jax.tree.structure(state)
    np.testing.assert_array_equal(optim.rprop(0.1).update(
        {"w": -jnp.ones((2, 3)), "b": None}, optim.rprop(0.1).init(params))[0]["w"], 0.1 * jnp.ones((2, 3)))


def test_sgdr_schedule_equals_optax():
    kwargs = [dict(init_value=0.0, peak_value=1.0, warmup_steps=3, decay_steps=10, end_value=0.1),
              dict(init_value=0.1, peak_value=0.5, warmup_steps=0, decay_steps=20),
              dict(init_value=0.0, peak_value=0.25, warmup_steps=5, decay_steps=40, exponent=2.0)]
    ours, theirs = S.sgdr_schedule(kwargs), optax.sgdr_schedule(kwargs)
    t = jnp.arange(0, 80, dtype=jnp.int32)
    got, expected = jax.jit(lambda t: (jax.vmap(ours)(t), jax.vmap(theirs)(t)))(t)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_cosine_warm_restarts_equals_the_paper_and_optax():
    t = np.arange(0, 45)
    ours = np.asarray(jax.jit(jax.vmap(S.cosine_warm_restarts(0.5, 15, min_value=0.05)))(jnp.asarray(t, jnp.int32)))
    paper = 0.05 + 0.5 * (0.5 - 0.05) * (1 + np.cos(np.pi * (t % 15) / 15))  # eq. 5, T_i = 15
    np.testing.assert_allclose(ours, paper, rtol=1e-5)
    cycle = dict(init_value=0.5, peak_value=0.5, warmup_steps=0, decay_steps=15, end_value=0.05)
    np.testing.assert_allclose(ours, jax.vmap(optax.sgdr_schedule([cycle] * 3))(jnp.asarray(t)), rtol=1e-5)


@pytest.mark.torch
def test_cosine_warm_restarts_with_growing_periods_equals_torch():
    torch = pytest.importorskip("torch")
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.3)
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2, eta_min=0.01)
    expected = []
    for _ in range(50):  # cycles of 3, 6, 12, 24 steps: restarts at 3, 9, 21, 45
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    ours = jax.vmap(S.cosine_warm_restarts(0.3, 3, period_multiplier=2, min_value=0.01))(jnp.arange(50))
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-7)
    assert np.isclose(float(ours[45]), 0.3) and float(ours[44]) < 0.02
