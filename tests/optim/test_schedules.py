"""Each schedule equals its closed form at several steps, and optax's twin where optax has one."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jdl.optim import schedules as S

STEPS = np.array([0, 1, 2, 5, 9, 10, 11, 50, 99, 100, 150])

CLOSED_FORMS = {
    "constant": (S.constant_schedule(0.3), lambda t: 0.3 + 0 * t),
    "exponential e^-kt": (S.exponential_rate(0.5, 0.05), lambda t: 0.5 * np.exp(-0.05 * t)),
    "exponential r^(t/T)": (S.exponential_decay(0.5, 10, 0.8), lambda t: 0.5 * 0.8 ** (t / 10)),
    "halve every 10": (S.step_decay(0.4, 10), lambda t: 0.4 * 0.5 ** (t // 10)),
    "factor 0.1 every 50": (S.step_decay(0.4, 50, 0.1), lambda t: 0.4 * 0.1 ** (t // 50)),
    "inverse time": (S.inverse_time_decay(0.2, 0.5), lambda t: 0.2 / (1 + 0.5 * t)),
    "inverse time T=10": (S.inverse_time_decay(0.2, 0.5, 10), lambda t: 0.2 / (1 + 0.5 * t / 10)),
    "cosine": (S.cosine_decay_schedule(1.0, 100, alpha=0.1),
               lambda t: 0.9 * 0.5 * (1 + np.cos(np.pi * np.minimum(t, 100) / 100)) + 0.1),
    "warmup": (S.warmup(0.6, 10), lambda t: 0.6 * np.minimum(t / 10, 1.0)),
    "join": (S.join_schedules([S.constant_schedule(0.1), S.exponential_rate(1.0, 0.1)], [10]),
             lambda t: np.where(t < 10, 0.1, np.exp(-0.1 * (t - 10)))),
}


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_schedule_equals_closed_form(name):
    schedule, closed = CLOSED_FORMS[name]
    got = jax.jit(jax.vmap(schedule))(jnp.asarray(STEPS, jnp.int32))
    np.testing.assert_allclose(np.asarray(got), closed(STEPS.astype(np.float64)), rtol=1e-5, atol=1e-7)


TWINS = [
    (S.exponential_decay(0.5, 7, 0.3, transition_begin=5, staircase=True, end_value=0.05),
     optax.exponential_decay(0.5, 7, 0.3, transition_begin=5, staircase=True, end_value=0.05)),
    (S.cosine_decay_schedule(2.0, 60, alpha=0.2, exponent=2.0), optax.cosine_decay_schedule(2.0, 60, 0.2, 2.0)),
    (S.linear_schedule(0.1, 0.5, 20, 5), optax.linear_schedule(0.1, 0.5, 20, 5)),
    (S.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100, 0.01),
     optax.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100, 0.01)),
    (S.join_schedules([S.constant_schedule(1.0), S.linear_schedule(1.0, 0.0, 20)], [30]),
     optax.join_schedules([optax.constant_schedule(1.0), optax.linear_schedule(1.0, 0.0, 20)], [30])),
    (S.polynomial_schedule(1.0, 0.01, 2.0, 90, 5), optax.polynomial_schedule(1.0, 0.01, 2.0, 90, 5)),
    (S.polynomial_schedule(0.2, 0.8, 0.5, 50), optax.polynomial_schedule(0.2, 0.8, 0.5, 50)),
    (S.piecewise_constant_schedule(0.5, {10: 0.5, 50: 0.1, 100: 2.0}),
     optax.piecewise_constant_schedule(0.5, {10: 0.5, 50: 0.1, 100: 2.0})),
    (S.piecewise_constant_schedule(0.3), optax.piecewise_constant_schedule(0.3)),
    (S.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100, 0.01, exponent=2.0),
     optax.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100, 0.01, exponent=2.0)),
]


@pytest.mark.parametrize("i", range(len(TWINS)))
def test_schedule_equals_optax(i):
    ours, theirs = TWINS[i]
    for t in STEPS:
        np.testing.assert_allclose(float(ours(jnp.int32(t))), float(theirs(jnp.int32(t))), rtol=1e-6, atol=1e-7)


def test_halving_reaches_an_eighth_after_three_periods():
    assert math.isclose(float(S.step_decay(1.0, 100)(jnp.int32(300))), 0.125)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_cosine_decay_with_decay_steps_past_int32_equals_optax(jit):
    """decay_steps = 1e10 does not fit int32; optax's own test expects 975.52826 at t = 1e9."""
    ours, theirs = (S.cosine_decay_schedule(1000.0, int(1e10)), optax.cosine_decay_schedule(1000.0, int(1e10)))
    ours, theirs = (jax.jit(ours), jax.jit(theirs)) if jit else (ours, theirs)
    for t in [0, 10**6, 10**9, 2 * 10**9]:
        np.testing.assert_allclose(float(ours(t)), float(theirs(t)), rtol=1e-6)
    np.testing.assert_allclose(float(ours(10**9)), 975.52826, rtol=1e-6)
