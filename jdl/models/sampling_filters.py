"""Choosing the next token from a language model's logits: greedy, temperature, top-k and top-p
(nucleus) sampling, each a pure function on the logits' last axis.

    greedy:       y = argmax_v z_v
    temperature:  p(v) ∝ exp(z_v / τ)           τ < 1 sharpens, τ > 1 flattens, τ → 0 is greedy
    top-k:        keep the k largest z_v, the others get −∞ (probability 0)
    top-p:        keep the smallest set of likeliest tokens whose probability sums to ≥ p

``next_token`` applies them in the order of Hugging Face's ``generate`` (temperature, then
top-k, then top-p on the renormalized survivors) and draws from what is left. All are
jittable; ``k``, ``p`` and τ may be traced scalars.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jdl.nn.activations import softmax


def _check_logits(name: str, logits: Any) -> jax.Array:
    logits = jnp.asarray(logits)
    if logits.ndim == 0 or not jnp.issubdtype(logits.dtype, jnp.floating):
        raise ValueError(f"{name}: expected float logits of shape (..., V), got shape "
                         f"{tuple(logits.shape)} and dtype {logits.dtype}")
    return logits


def ranks(logits: jax.Array) -> jax.Array:
    """The rank of each logit along the last axis, 0 for the largest; ties are ranked by index
    (the lower id first), so the ranks are a permutation of 0..V−1.

    Shapes: (..., V) → (..., V) int.
    """
    order = jnp.argsort(-logits, axis=-1, stable=True)  # (..., V): ids, largest first
    return jnp.argsort(order, axis=-1, stable=True)  # (..., V): the inverse permutation


def greedy(logits: Any) -> jax.Array:
    """y = argmax_v z_v (the lowest id among ties). Shapes: (..., V) → (...) int32."""
    return jnp.argmax(_check_logits("greedy", logits), axis=-1).astype(jnp.int32)


def temperature_logits(logits: Any, temperature: Any) -> jax.Array:
    """z / τ, so that softmax(z/τ)_v = exp(z_v/τ) / Σ_u exp(z_u/τ); τ > 0.

    Shapes: (..., V) → (..., V).
    """
    if isinstance(temperature, (int, float)) and not temperature > 0:
        raise ValueError(f"temperature_logits: temperature must be > 0 (use greedy for 0), "
                         f"got {temperature!r}")
    logits = _check_logits("temperature_logits", logits)
    return logits / jnp.asarray(temperature, logits.dtype)


def top_k_logits(logits: Any, k: Any) -> jax.Array:
    """Keep the k largest logits of each row and set the others to −∞: exactly k survive,
    ties at the k-th value broken towards the lower id (``ranks``).

    Shapes: (..., V) → (..., V). ``k`` ≥ 1; k ≥ V keeps every token.
    """
    if isinstance(k, int) and k < 1:
        raise ValueError(f"top_k_logits: k must be a positive int, got {k!r}")
    logits = _check_logits("top_k_logits", logits)
    return jnp.where(ranks(logits) < k, logits, -jnp.inf)


def top_p_logits(logits: Any, p: Any) -> jax.Array:
    """Nucleus filtering (Holtzman et al., 2020): keep the smallest set S of the likeliest
    tokens with Σ_{v∈S} softmax(z)_v ≥ p, the others set to −∞.

    With the probabilities sorted in decreasing order π_1 ≥ π_2 ≥ …, token r (1-based) is kept
    iff π_1 + … + π_{r−1} < p: the likeliest token always survives, and the set stops at the
    first token that brings the mass to p.

    Shapes: (..., V) → (..., V). ``p`` in (0, 1]; p = 1 keeps every token of nonzero mass.
    """
    if isinstance(p, (int, float)) and not 0 < p <= 1:
        raise ValueError(f"top_p_logits: p must be in (0, 1], got {p!r}")
    logits = _check_logits("top_p_logits", logits)
    r = ranks(logits)  # (..., V)
    order = jnp.argsort(r, axis=-1)  # (..., V): ids in decreasing probability
    pi = jnp.take_along_axis(softmax(logits), order, axis=-1)  # (..., V) sorted, decreasing
    mass_before = jnp.cumsum(pi, axis=-1) - pi  # (..., V): π_1 + … + π_{r−1}
    keep_sorted = mass_before < p  # (..., V)
    keep = jnp.take_along_axis(keep_sorted, r, axis=-1)  # (..., V) back in id order
    return jnp.where(keep, logits, -jnp.inf)


def next_token(key: jax.Array | None, logits: Any, temperature: Any = 1.0, top_k: Any = None,
               top_p: Any = None) -> jax.Array:
    """y ~ Categorical(softmax(filter(z / τ))), filter = top-k then top-p (each when given);
    τ = 0 is greedy decoding, y = argmax_v z_v (no key needed).

    Shapes: logits (..., V) → ids (...) int32.

    Args:
      key: a ``jax.random`` key (None only for τ = 0).
      logits: the next-token logits z.
      temperature: τ ≥ 0; a traced scalar picks greedy where it is 0.
      top_k: keep the k likeliest tokens (None: all).
      top_p: keep the nucleus of mass ≥ p (None: all).
    """
    if isinstance(temperature, (int, float)):
        if not temperature >= 0:
            raise ValueError(f"next_token: temperature must be >= 0 (0 is greedy), got {temperature!r}")
        if temperature == 0:
            return greedy(logits)
    if key is None:
        raise ValueError("next_token: sampling with temperature > 0 needs a key: "
                         "next_token(jax.random.key(seed), logits, temperature)")
    logits = _check_logits("next_token", logits)
    tau = jnp.asarray(temperature, logits.dtype)
    z = temperature_logits(logits, jnp.where(tau > 0, tau, 1))
    if top_k is not None:
        z = top_k_logits(z, top_k)
    if top_p is not None:
        z = top_p_logits(z, top_p)
    drawn = jax.random.categorical(key, z, axis=-1).astype(jnp.int32)  # (...)
    return jnp.where(tau > 0, drawn, greedy(logits))
