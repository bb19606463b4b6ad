"""Sampling with a temperature: τ = 0 is argmax, draws follow softmax(z/τ), one jit for every τ."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.models.sampling import sample_logits

LOGITS = jnp.array([[1.0, 0.0, -1.0, 0.5], [-2.0, 3.0, 0.0, 0.2]])


def test_zero_temperature_is_argmax_and_tiny_temperature_tends_to_it(key):
    np.testing.assert_array_equal(sample_logits(key, LOGITS, 0.0), [0, 1])
    keys = jax.random.split(key, 50)
    draws = jax.vmap(lambda k: sample_logits(k, LOGITS, 1e-3))(keys)
    np.testing.assert_array_equal(draws, np.tile([0, 1], (50, 1)))


@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
def test_draws_follow_softmax_of_logits_over_temperature(key, tau):
    n = 20_000
    draws = jax.jit(jax.vmap(sample_logits, in_axes=(0, None, None)))(jax.random.split(key, n), LOGITS[0], tau)
    freq = np.bincount(np.asarray(draws), minlength=4) / n
    p = np.exp(np.asarray(LOGITS[0]) / tau)
    p /= p.sum()
    np.testing.assert_allclose(freq, p, atol=4 * np.sqrt(p * (1 - p) / n).max())  # 4 standard errors


def test_traced_temperature_one_compilation(key):
    traces = []

    @jax.jit
    def f(k, tau):
        traces.append(1)
        return sample_logits(k, LOGITS, tau)

    np.testing.assert_array_equal(f(key, 0.0), [0, 1])
    assert f(key, 1.0).shape == (2,) and f(key, 0.7).dtype == jnp.int32
    assert len(traces) == 1


def test_errors():
    with pytest.raises(ValueError, match="sample_logits: temperature must be >= 0"):
        sample_logits(jax.random.key(0), LOGITS, -1.0)
    with pytest.raises(ValueError, match="sample_logits: logits must have a token axis"):
        sample_logits(jax.random.key(0), jnp.array(1.0))
    with pytest.raises(ValueError, match="sample_logits: temperature must be a scalar"):
        sample_logits(jax.random.key(0), LOGITS, jnp.ones(2))
