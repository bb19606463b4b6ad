"""RMSProp: Adagrad with a leaky sum, so the step stops shrinking forever (Hinton, lecture 6e).

    v_{t+1} = β·v_t + (1−β)·|g_t|²                    u = g_t / √(v_{t+1} + ε)
centered (Graves 2013): also m_{t+1} = β·m_t + (1−β)·g_t, and
                                                     u = g_t / √(v_{t+1} − |m_{t+1}|² + ε)

i.e. divide by a running estimate of the gradient's standard deviation instead of its root mean
square. ``eps_in_sqrt=False`` gives u = g / (√(·) + ε). ``bias_correction=True`` divides m and v
by 1 − β^t as Adam does (then ``scale_by_rms(β₂, eps_in_sqrt=False, bias_correction=True)`` is
Adam with β₁ = 0). Followed by u ← −α·u in ``jdl.optim.rmsprop``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jdl.optim.base import (
    GradientTransformation, abs_sq, bias_correction as correction, check_decay, check_positive, map_moment,
    map_updates,
)


class RMSPropState(NamedTuple):
    """v: the moving average of |g|², one leaf per param."""

    v: Any


class RMSPropWithCountState(NamedTuple):
    """count: t, the updates made so far (for the bias correction); v: as in ``RMSPropState``."""

    count: jax.Array
    v: Any


class CenteredRMSPropState(NamedTuple):
    """m: the moving average of g; v: the moving average of |g|²."""

    m: Any
    v: Any


class CenteredRMSPropWithCountState(NamedTuple):
    """count: t, the updates made so far; m, v: as in ``CenteredRMSPropState``."""

    count: jax.Array
    m: Any
    v: Any


def _scale(g, second_moment, eps, eps_in_sqrt):
    """g / √(s + ε) or g / (√s + ε)."""
    if eps_in_sqrt:
        return g * jax.lax.rsqrt(second_moment + eps)
    return g / (jnp.sqrt(second_moment) + eps)


def _checks(name, decay, eps):
    check_decay(name, "decay", decay)
    check_positive(name, "eps", eps)


def _corrected(decay, count, *moments):
    """The moments divided by 1 − β^t (each leaf in its own dtype)."""
    c = correction(decay, count)
    return [jax.tree.map(lambda x: x / c.astype(x.dtype), tree) for tree in moments]


def scale_by_rms(decay: float = 0.9, eps: float = 1e-8, initial_scale: float = 0.0,
                 eps_in_sqrt: bool = True, bias_correction: bool = False) -> GradientTransformation:
    """u = g / √(v̂ + ε), v ← β·v + (1−β)·|g|² (v starts at ``initial_scale``); v̂ = v, or
    v / (1 − β^t) with ``bias_correction``.

    Shapes: v and u have the gradient leaves' shapes; count is a scalar int32.
    Args: decay: β in [0, 1); eps: ε > 0; initial_scale: v₀; eps_in_sqrt: ε under the root;
      bias_correction: divide v by 1 − β^t (the state then carries the count).
    """
    _checks("scale_by_rms", decay, eps)

    def init(params):
        v = jax.tree.map(lambda p: jnp.full_like(p, initial_scale), params)
        return RMSPropWithCountState(count=jnp.zeros([], jnp.int32), v=v) if bias_correction else RMSPropState(v=v)

    def update(grads, state, params=None):
        del params
        v = map_moment(lambda g, v: (1 - decay) * abs_sq(g) + decay * v, grads, state.v)
        u = lambda v_hat: map_updates(lambda g, v: _scale(g, v, eps, eps_in_sqrt), grads, v_hat)
        if not bias_correction:
            return u(v), RMSPropState(v=v)
        count = state.count + 1
        return u(*_corrected(decay, count, v)), RMSPropWithCountState(count=count, v=v)

    return GradientTransformation(init, update)


def scale_by_stddev(decay: float = 0.9, eps: float = 1e-8, initial_scale: float = 0.0,
                    eps_in_sqrt: bool = True, bias_correction: bool = False) -> GradientTransformation:
    """Centered RMSProp: u = g / √(v̂ − |m̂|² + ε), m ← β·m + (1−β)·g, v ← β·v + (1−β)·|g|²;
    m̂, v̂ = m, v, or both divided by 1 − β^t with ``bias_correction``.

    Shapes: m, v and u have the gradient leaves' shapes. Args: decay: β in [0, 1); eps: ε > 0;
      initial_scale: v₀; eps_in_sqrt: ε under the root; bias_correction: divide m, v by 1 − β^t.
    """
    _checks("scale_by_stddev", decay, eps)

    def init(params):
        m = jax.tree.map(jnp.zeros_like, params)
        v = jax.tree.map(lambda p: jnp.full_like(p, initial_scale), params)
        if bias_correction:
            return CenteredRMSPropWithCountState(count=jnp.zeros([], jnp.int32), m=m, v=v)
        return CenteredRMSPropState(m=m, v=v)

    def update(grads, state, params=None):
        del params
        m = map_moment(lambda g, m: (1 - decay) * g + decay * m, grads, state.m)
        v = map_moment(lambda g, v: (1 - decay) * abs_sq(g) + decay * v, grads, state.v)
        u = lambda m, v: map_updates(lambda g, m, v: _scale(g, v - abs_sq(m), eps, eps_in_sqrt), grads, m, v)
        if not bias_correction:
            return u(m, v), CenteredRMSPropState(m=m, v=v)
        count = state.count + 1
        return u(*_corrected(decay, count, m, v)), CenteredRMSPropWithCountState(count=count, m=m, v=v)

    return GradientTransformation(init, update)
