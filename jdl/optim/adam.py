"""Adam: momentum on the gradient plus RMSProp's per-coordinate scale, both bias-corrected.

    m_{t+1} = β₁·m_t + (1−β₁)·g_t            v_{t+1} = β₂·v_t + (1−β₂)·|g_t|²
    m̂ = m_{t+1} / (1 − β₁^{t+1})             v̂ = v_{t+1} / (1 − β₂^{t+1})
    u = m̂ / (√v̂ + ε)        (cheat sheet, AdamW paper, optax: the default)
    u = m̂ / √(v̂ + ε)        (the course's review slides: ``eps_in_sqrt=True``)

followed by u ← −η·u in ``jdl.optim.adam``. Kingma & Ba 2015.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jdl.optim.base import GradientTransformation, abs_sq, check_decay, check_positive


class AdamState(NamedTuple):
    """count: t, the updates made so far; m: first moment (mean of g); v: second moment (of g²)."""

    count: jax.Array
    m: Any
    v: Any


def _bias_correction(beta: float, count: jax.Array) -> jax.Array:
    """1 − β^t as float32 operations on the count array, so it rounds the same eager and jitted.

    With an integer count, eager JAX raises β to the power by repeated float32 products, and the
    jitted program by a float pow; the two differ by an ulp of 1, which 1 − β^t (≈ 0.003 for
    β = 0.999, t = 3) turns into ~2e-5 relative. A float exponent takes the same path both ways.
    """
    return 1 - jnp.power(jnp.float32(beta), count.astype(jnp.float32))


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                  eps_in_sqrt: bool = False) -> GradientTransformation:
    """u = m̂ / (√v̂ + ε) with bias-corrected moments m̂, v̂ (see the module docstring).

    Shapes: m, v and u have the shapes of the gradient's leaves; count is a scalar int32.
    Args: b1: β₁ in [0, 1); b2: β₂ in [0, 1); eps: ε > 0; eps_in_sqrt: put ε under the root.
    """
    for arg, value in (("b1", b1), ("b2", b2)):
        check_decay("scale_by_adam", arg, value)
    check_positive("scale_by_adam", "eps", eps)

    def init(params):
        # m and v get their own buffers: the train step donates the state, and a buffer may be
        # donated only once
        return AdamState(count=jnp.zeros([], jnp.int32), m=jax.tree.map(jnp.zeros_like, params),
                         v=jax.tree.map(jnp.zeros_like, params))

    def update(grads, state, params=None):
        del params
        m = jax.tree.map(lambda g, m: (1 - b1) * g + b1 * m, grads, state.m)
        v = jax.tree.map(lambda g, v: (1 - b2) * abs_sq(g) + b2 * v, grads, state.v)
        count = state.count + 1
        c1, c2 = _bias_correction(b1, count), _bias_correction(b2, count)

        def step(m, v):
            m_hat, v_hat = m / c1.astype(m.dtype), v / c2.astype(v.dtype)
            if eps_in_sqrt:
                return m_hat / jnp.sqrt(v_hat + eps)
            return m_hat / (jnp.sqrt(v_hat) + eps)

        return jax.tree.map(step, m, v), AdamState(count=count, m=m, v=v)

    return GradientTransformation(init, update)
