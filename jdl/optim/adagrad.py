"""Adagrad: each coordinate's step shrinks with the root of the sum of all its squared gradients.

    v_{t+1} = v_t + |g_t|²        u = g_t / √(v_{t+1} + ε)     (ε inside the root, as the course
                                                                 and optax write it)

followed by u ← −α·u in ``jdl.optim.adagrad``. The course starts the sum at v₀ = 0
(``initial_accumulator_value=0.0``: the first step is then α·g/√(g² + ε) ≈ α·sign(g)); optax and
jdl default to v₀ = 0.1 (PyTorch's ``initial_accumulator_value`` defaults to 0 with ε = 1e-10
outside the root). Because v only grows, the step only shrinks: the
method stalls on long problems (visible on Rosenbrock in experiments/optimizers.py). Duchi et al. 2011.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jdl.optim.base import (
    GradientTransformation, abs_sq, check_nonnegative, check_positive, map_moment, map_updates,
)


class AdagradState(NamedTuple):
    """v: the running sum of squared gradients, one leaf per param."""

    v: Any


def scale_by_rss(initial_accumulator_value: float = 0.1, eps: float = 1e-7) -> GradientTransformation:
    """u = g / √(v + ε) with v ← v + g² (v starts at ``initial_accumulator_value``; with ε > 0,
    v = 0 only where every g so far was 0, and there u = 0 too).

    Shapes: v and u have the shapes of the gradient's leaves.
    Args: initial_accumulator_value: v₀ ≥ 0 (optax's default 0.1; the course's 0); eps: ε > 0.
    """
    check_nonnegative("scale_by_rss", "initial_accumulator_value", initial_accumulator_value)
    check_positive("scale_by_rss", "eps", eps)

    def init(params):
        return AdagradState(v=jax.tree.map(lambda p: jnp.full_like(p, initial_accumulator_value), params))

    def update(grads, state, params=None):
        del params
        v = map_moment(lambda g, v: v + abs_sq(g), grads, state.v)
        u = map_updates(lambda g, v: g * jax.lax.rsqrt(v + eps), grads, v)
        return u, AdagradState(v=v)

    return GradientTransformation(init, update)
