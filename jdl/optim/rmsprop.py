"""RMSProp: Adagrad with a leaky sum, so the step stops shrinking forever (Hinton, lecture 6e).

    v_{t+1} = β·v_t + (1−β)·|g_t|²                    u = g_t / √(v_{t+1} + ε)
centered (Graves 2013): also m_{t+1} = β·m_t + (1−β)·g_t, and
                                                     u = g_t / √(v_{t+1} − m_{t+1}² + ε)

i.e. divide by a running estimate of the gradient's standard deviation instead of its root mean
square. ``eps_in_sqrt=False`` gives u = g / (√(·) + ε). Followed by u ← −α·u in ``jdl.optim.rmsprop``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jdl.optim.base import GradientTransformation, abs_sq, check_decay, check_positive


class RMSPropState(NamedTuple):
    """v: the moving average of g², one leaf per param."""

    v: Any


class CenteredRMSPropState(NamedTuple):
    """m: the moving average of g; v: the moving average of g²."""

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


def scale_by_rms(decay: float = 0.9, eps: float = 1e-8, initial_scale: float = 0.0,
                 eps_in_sqrt: bool = True) -> GradientTransformation:
    """u = g / √(v + ε), v ← β·v + (1−β)·g² (v starts at ``initial_scale``).

    Shapes: v and u have the gradient leaves' shapes. Args: decay: β in [0, 1); eps: ε > 0.
    """
    _checks("scale_by_rms", decay, eps)

    def init(params):
        return RMSPropState(v=jax.tree.map(lambda p: jnp.full_like(p, initial_scale), params))

    def update(grads, state, params=None):
        del params
        v = jax.tree.map(lambda g, v: (1 - decay) * abs_sq(g) + decay * v, grads, state.v)
        return jax.tree.map(lambda g, v: _scale(g, v, eps, eps_in_sqrt), grads, v), RMSPropState(v=v)

    return GradientTransformation(init, update)


def scale_by_stddev(decay: float = 0.9, eps: float = 1e-8, initial_scale: float = 0.0,
                    eps_in_sqrt: bool = True) -> GradientTransformation:
    """Centered RMSProp: u = g / √(v − m² + ε), m ← β·m + (1−β)·g, v ← β·v + (1−β)·g².

    Shapes: m, v and u have the gradient leaves' shapes. Args: decay: β in [0, 1); eps: ε > 0.
    """
    _checks("scale_by_stddev", decay, eps)

    def init(params):
        return CenteredRMSPropState(m=jax.tree.map(jnp.zeros_like, params),
                                    v=jax.tree.map(lambda p: jnp.full_like(p, initial_scale), params))

    def update(grads, state, params=None):
        del params
        m = jax.tree.map(lambda g, m: (1 - decay) * g + decay * m, grads, state.m)
        v = jax.tree.map(lambda g, v: (1 - decay) * abs_sq(g) + decay * v, grads, state.v)
        u = jax.tree.map(lambda g, m, v: _scale(g, v - abs_sq(m), eps, eps_in_sqrt), grads, m, v)
        return u, CenteredRMSPropState(m=m, v=v)

    return GradientTransformation(init, update)
