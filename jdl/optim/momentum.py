"""Momentum, in the two forms the course writes and optax's, which are the same method.

optax's trace (heavy ball):   t ← g + μ·t;          u = −η·t            (``trace`` then ``scale``)
the course's velocity form:   m ← μ·m − α·∇ℓ;       w ← w + m           (``scale_by_velocity``)
Nesterov (optax's form):      t ← g + μ·t;          u = −η·(g + μ·t)    (``trace(μ, nesterov=True)``)

For a constant α = η the velocity is m = −η·t at every step, so both forms take the same steps
(tested). Nesterov's look-ahead form evaluates the gradient at w̃ = w + μ·m; in the variable w̃
the update becomes optax's ``g + μ·t`` form (Sutskever et al. 2013; tested).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jdl.optim.base import (
    GradientTransformation, ScalarOrSchedule, check_decay, check_learning_rate, map_moment, map_updates,
)
from jdl.optim.onepass import one_pass, opaque


class TraceState(NamedTuple):
    """t: the trace (the running sum t ← g + μ·t), one leaf per param."""

    t: Any


class VelocityState(NamedTuple):
    """count: updates made so far (for a learning-rate schedule); m: the velocity
    (m ← μ·m − α·∇ℓ), one leaf per param; the update is u = m."""

    count: jax.Array
    m: Any


def trace(decay: float, nesterov: bool = False, accumulator_dtype: Any = None) -> GradientTransformation:
    """Heavy-ball momentum as optax writes it: t_{k+1} = g_k + μ·t_k; u = t_{k+1}, or with
    ``nesterov=True`` u = g_k + μ·t_{k+1}. Follow it with ``scale_by_learning_rate(η)``.

    Shapes: t has the params' leaves' shapes. Args: decay: μ in [0, 1); nesterov: bool;
    accumulator_dtype: the dtype t is stored in (e.g. ``jnp.bfloat16``; u is computed before the
    rounding, as optax does), None: the params'.
    """
    check_decay("trace", "decay", decay)

    def init(params):
        return TraceState(t=jax.tree.map(lambda p: jnp.zeros_like(p, dtype=accumulator_dtype), params))

    def update(grads, state, params=None):
        del params
        t = map_moment(lambda g, t: g + decay * t, grads, state.t)
        follow = (lambda g, t: g + decay * t) if nesterov else (lambda g, t: t)
        if one_pass(grads):  # u from t' recomputed from the inputs: one loop per leaf (onepass)
            g_in, t_in = opaque((grads, state.t))
            updates = map_updates(follow, g_in, map_moment(lambda g, t: g + decay * t, g_in, t_in))
        else:
            updates = map_updates(follow, grads, t)
        if accumulator_dtype is not None:
            t = jax.tree.map(lambda t: t.astype(accumulator_dtype), t)
        return updates, TraceState(t=t)

    return GradientTransformation(init, update)


def scale_by_velocity(learning_rate: ScalarOrSchedule, momentum: float) -> GradientTransformation:
    """The course's momentum: m_{k+1} = μ·m_k − α_k·g_k; u = m_{k+1} (so w ← w + m).

    The learning rate lives inside the velocity, so with a schedule an old step keeps the α it was
    taken with (optax's trace form rescales the whole sum by today's η instead); for a constant α
    the two are equal. Shapes: m has the params' leaves' shapes.
    Args: learning_rate: α ≥ 0 or a schedule k ↦ α_k; momentum: μ in [0, 1).
    """
    check_learning_rate("scale_by_velocity", learning_rate)
    check_decay("scale_by_velocity", "momentum", momentum)

    def init(params):
        return VelocityState(count=jnp.zeros([], jnp.int32),
                                    m=jax.tree.map(jnp.zeros_like, params))

    def update(grads, state, params=None):
        del params
        alpha = learning_rate(state.count) if callable(learning_rate) else learning_rate
        m = map_moment(lambda g, m: momentum * m - jnp.asarray(alpha, g.dtype) * g, grads, state.m)
        return map_updates(lambda g, m: m, grads, m), VelocityState(count=state.count + 1, m=m)

    return GradientTransformation(init, update)


class EmaState(NamedTuple):
    """v: the exponential moving average of the gradients, v ← β·v + (1−β)·g."""

    v: Any


def scale_by_ema(decay: float) -> GradientTransformation:
    """Momentum as a moving average (the course's cheat sheet): v_{k+1} = β·v_k + (1−β)·g_k;
    u = v_{k+1}. Equal to ``trace(β)`` times (1−β): a smaller, unbiased-in-the-limit step.

    Shapes: v has the params' leaves' shapes. Args: decay: β in [0, 1).
    """
    check_decay("scale_by_ema", "decay", decay)

    def init(params):
        return EmaState(v=jax.tree.map(jnp.zeros_like, params))

    def update(grads, state, params=None):
        del params
        v = map_moment(lambda g, v: (1 - decay) * g + decay * v, grads, state.v)
        return map_updates(lambda g, v: v, grads, v), EmaState(v=v)

    return GradientTransformation(init, update)
