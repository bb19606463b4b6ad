"""Adam: momentum on the gradient plus RMSProp's per-coordinate scale, both bias-corrected.

    m_{t+1} = β₁·m_t + (1−β₁)·g_t            v_{t+1} = β₂·v_t + (1−β₂)·|g_t|²
    m̂ = m_{t+1} / (1 − β₁^{t+1})             v̂ = v_{t+1} / (1 − β₂^{t+1})
    u = m̂ / (√v̂ + ε)        (cheat sheet, AdamW paper, optax: the default)
    u = m̂ / √(v̂ + ε)        (the course's review slides: ``eps_in_sqrt=True``)
    u = m / (√v + ε)         (one of the course's slides, no bias correction: ``bias_correction=False``)

followed by u ← −η·u in ``jdl.optim.adam``. Kingma & Ba 2015.

Under jit, where the compiler fuses it (``jdl.optim.onepass``), u is computed from m_{t+1} and
v_{t+1} recomputed from opaque copies of (g, m_t, v_t): the same values, one loop per leaf that
reads g, m, v, θ once and writes m, v, θ once.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jdl.optim.base import (
    GradientTransformation, abs_sq, bias_correction as correction, check_decay, check_positive, map_moment, map_updates,
)
from jdl.optim.onepass import one_pass, opaque


class AdamState(NamedTuple):
    """count: t, the updates made so far; m: first moment (mean of g); v: second moment (of g²)."""

    count: jax.Array
    m: Any
    v: Any


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                  eps_in_sqrt: bool = False, mu_dtype: Any = None,
                  bias_correction: bool = True) -> GradientTransformation:
    """u = m̂ / (√v̂ + ε) with bias-corrected moments m̂, v̂ (see the module docstring).

    Shapes: m, v and u have the shapes of the gradient's leaves; count is a scalar int32.
    Args: b1: β₁ in [0, 1); b2: β₂ in [0, 1); eps: ε > 0; eps_in_sqrt: put ε under the root;
      mu_dtype: the dtype m is stored in (e.g. ``jnp.bfloat16`` halves its memory; the step is
      computed in the gradient's dtype and m rounded when stored, as optax does), None: the params';
      bias_correction: m̂ = m/(1 − β₁^t), v̂ = v/(1 − β₂^t) (Kingma & Ba, optax, PyTorch); False
      uses m and v as they are (the slide's "ADAM update" w ← w − η·m/(√r + ε)): m and v start
      at 0, so the first step is (1 − β₁)/√(1 − β₂) ≈ 3.2 times the bias-corrected one at the
      defaults, and the two agree once β₁^t, β₂^t are ≈ 0.
    """
    for arg, value in (("b1", b1), ("b2", b2)):
        check_decay("scale_by_adam", arg, value)
    check_positive("scale_by_adam", "eps", eps)

    def init(params):
        # m and v get their own buffers: the train step donates the state, and a buffer may be
        # donated only once
        return AdamState(count=jnp.zeros([], jnp.int32),
                         m=jax.tree.map(lambda p: jnp.zeros_like(p, dtype=mu_dtype), params),
                         v=jax.tree.map(jnp.zeros_like, params))

    def moments(grads, m, v):
        return (map_moment(lambda g, m: (1 - b1) * g + b1 * m, grads, m),
                map_moment(lambda g, v: ((1 - b2) * abs_sq(g) + b2 * v).astype(v.dtype), grads, v))

    def update(grads, state, params=None):
        del params
        m, v = moments(grads, state.m, state.v)
        # the update from moments recomputed from the inputs: one loop per leaf (see onepass)
        m_u, v_u = moments(*opaque((grads, state.m, state.v))) if one_pass(grads) else (m, v)
        count = state.count + 1
        one = jnp.ones([], jnp.float32)
        c1, c2 = (correction(b1, count), correction(b2, count)) if bias_correction else (one, one)

        def step(m, v):
            m_hat, v_hat = m / c1.astype(m.dtype), v / c2.astype(v.dtype)
            if eps_in_sqrt:
                return m_hat / jnp.sqrt(v_hat + eps)
            return m_hat / (jnp.sqrt(v_hat) + eps)

        updates = map_updates(lambda g, m, v: step(m, v), grads, m_u, v_u)
        if mu_dtype is not None:
            m = jax.tree.map(lambda m: m.astype(mu_dtype), m)
        return updates, AdamState(count=count, m=m, v=v)

    return GradientTransformation(init, update)
