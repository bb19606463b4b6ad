"""Drawing the next token from a language model's logits, with a temperature."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jdl.models.sampling_filters import next_token


def sample_logits(key: jax.Array, logits: Any, temperature: Any = 1.0) -> jax.Array:
    """y ~ Categorical(softmax(z / τ)): p(y = v) = e^{z_v/τ} / Σ_u e^{z_u/τ}.

    τ = 1 samples the model's own distribution; τ < 1 sharpens it towards the likeliest token
    and τ → 0 tends to argmax_v z_v, which τ = 0 returns exactly (greedy decoding); τ > 1
    flattens it towards the uniform. Drawn by ``jax.random.categorical`` (the Gumbel-max
    trick, argmax_v (z_v/τ + g_v) with g_v ~ Gumbel(0, 1)) through ``sampling_filters.next_token``
    with no top-k/top-p filter, so the LSTM and the GPT sample alike. Pure and jittable; ``temperature``
    may be a traced scalar, so one compiled function serves every τ.

    Shapes: logits (..., V) → ids (...) int32.

    Args:
      key: a ``jax.random`` key.
      logits: unnormalized log-probabilities z, the last axis over the V tokens.
      temperature: τ ≥ 0 (a Python number, checked here, or a scalar array).

    >>> sample_logits(jax.random.key(0), jnp.array([0.1, 2.0, -1.0]), 0.0)
    Array(1, dtype=int32)
    """
    if isinstance(temperature, (int, float)) and not temperature >= 0:
        raise ValueError(f"sample_logits: temperature must be >= 0 (0 is greedy), got {temperature!r}")
    logits = jnp.asarray(logits)
    if logits.ndim == 0:
        raise ValueError("sample_logits: logits must have a token axis (..., V), got a scalar")
    tau = jnp.asarray(temperature, jnp.float32)
    if tau.ndim != 0:
        raise ValueError(f"sample_logits: temperature must be a scalar, got shape {tau.shape}")
    return next_token(key, logits, tau)  # (...): the same draw as the GPT's sampler, unfiltered
