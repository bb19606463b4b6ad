"""The course's forms of the adaptive optimizers beside optax's, each pinned to a hand-written
loop of the equation the course writes (numpy, float64) and, where optax has the form, to optax:

- AdamW as Loshchilov & Hutter's Algorithm 2: θ ← θ − η_t(α·m̂/(√v̂ + ε) + λθ), the decay not
  multiplied by α; equal to optax.adamw(α·η_t, weight_decay=λ/α);
- Adam without bias correction (w ← w − η·m/(√r + ε), one of the slides);
- Adagrad with v₀ = 0 (the course) and v₀ = 0.1 (optax's default).
"""

import jax
import numpy as np
import optax
import pytest

from jdl import optim
from tests.helpers import assert_close
from tests.optim.conftest import params_and_grads, run_steps

STEPS = 20
ALPHA, LAMBDA = 0.01, 0.02  # Algorithm 2's α and λ (λ/α = 2: far from the other form's λ)


def _numpy(tree):
    return jax.tree.map(lambda a: np.asarray(a, np.float64), tree)


@pytest.fixture(scope="module")
def dense():
    """(params, grads) as float32 arrays for jdl and optax, 20 steps of random gradients."""
    return params_and_grads("dense", steps=STEPS)


def _hand_loop(params, grads, step):
    """θ_t = step(θ_{t−1}, g_t, t, state) over the stacked grads, leaf by leaf, in float64."""
    out = {}
    for name, theta in _numpy(params).items():
        state = {}
        for t, g in enumerate(np.asarray(grads[name], np.float64), start=1):
            theta = step(theta, g, t, state)
        out[name] = theta
    return out


def _adam_moments(g, state, b1=0.9, b2=0.999):
    state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
    state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g * g
    return state["m"], state["v"]


def _eta(t):  # Algorithm 2's schedule multiplier η_t, a function of t − 1 = the updates made so far
    return 0.5 ** ((t - 1) // 5)


def _algorithm2(theta, g, t, state, eps=1e-8, b1=0.9, b2=0.999):
    m, v = _adam_moments(g, state, b1, b2)
    m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    return theta - _eta(t) * (ALPHA * m_hat / (np.sqrt(v_hat) + eps) + LAMBDA * theta)


def _schedule(count):
    return 0.5 ** (count // 5)


def test_adamw_paper_is_algorithm_2(dense):
    params, grads = dense
    ours = run_steps(optim.adamw_paper(ALPHA, LAMBDA, schedule_multiplier=_schedule), params, grads)
    assert_close(ours, _hand_loop(params, grads, _algorithm2), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("scheduled", [False, True], ids=["constant", "schedule"])
def test_adamw_paper_equals_optax_adamw_with_the_converted_decay(dense, scheduled):
    """Algorithm 2 (α, λ, η_t) ≡ optax.adamw(lr_t = α·η_t, weight_decay = λ/α)."""
    params, grads = dense
    eta = _schedule if scheduled else 1.0
    lr = (lambda count: ALPHA * _schedule(count)) if scheduled else ALPHA
    ours = run_steps(optim.adamw_paper(ALPHA, LAMBDA, schedule_multiplier=eta), params, grads)
    theirs = run_steps(optax.adamw(lr, weight_decay=LAMBDA / ALPHA), params, grads, apply=optax.apply_updates)
    assert_close(ours, theirs, rtol=1e-6, atol=1e-6)
    # the unconverted λ is another optimizer: the decay would be α times smaller
    other = run_steps(optax.adamw(lr, weight_decay=LAMBDA), params, grads, apply=optax.apply_updates)
    assert np.max(np.abs(np.asarray(ours["w"]) - np.asarray(other["w"]))) > 1e-3


def test_adamw_paper_refuses_a_scheduled_alpha():
    with pytest.raises(ValueError, match="adamw_paper: learning_rate is the constant α.*schedule_multiplier"):
        optim.adamw_paper(lambda count: 1e-3, 1e-4)


def test_adam_without_bias_correction_is_the_slide(dense):
    """w ← w − η·m/(√r + ε) with m, r the plain moving averages (no 1 − β^t)."""
    params, grads = dense
    lr, eps = 0.01, 1e-8

    def slide(theta, g, t, state):
        m, r = _adam_moments(g, state)
        return theta - lr * m / (np.sqrt(r) + eps)

    ours = run_steps(optim.adam(lr, bias_correction=False), params, grads)
    assert_close(ours, _hand_loop(params, grads, slide), rtol=2e-5, atol=1e-6)
    # the first step is (1 − β₁)/√(1 − β₂) ≈ 3.16 times the bias-corrected one (which is ≈ η·sign(g))
    one = jax.tree.map(lambda g: g[:1], grads)
    plain = run_steps(optim.adam(lr, bias_correction=False), params, one)
    corrected = run_steps(optim.adam(lr), params, one)
    ratio = (np.asarray(plain["w"]) - params["w"]) / (np.asarray(corrected["w"]) - params["w"])
    np.testing.assert_allclose(ratio, 0.1 / np.sqrt(0.001), rtol=1e-4)


@pytest.mark.parametrize("v0", [0.0, 0.1], ids=["course_v0=0", "optax_v0=0.1"])
def test_adagrad_initial_accumulator(dense, v0):
    """v ← v + g²; θ ← θ − α·g/√(v + ε), v starting at v₀: a hand loop and optax.adagrad."""
    params, grads = dense
    lr, eps = 0.1, 1e-7

    def course(theta, g, t, state):
        state["v"] = state.get("v", v0) + g * g
        return theta - lr * g / np.sqrt(state["v"] + eps)

    ours = run_steps(optim.adagrad(lr, initial_accumulator_value=v0), params, grads)
    assert_close(ours, _hand_loop(params, grads, course), rtol=2e-5, atol=1e-6)
    theirs = run_steps(optax.adagrad(lr, initial_accumulator_value=v0), params, grads, apply=optax.apply_updates)
    assert_close(ours, theirs, rtol=1e-6, atol=1e-6)
