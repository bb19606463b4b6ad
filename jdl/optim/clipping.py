"""Gradient clipping, the course's cure for exploding gradients (1.5¹⁰⁰ ≈ 4e17).

    clip(δ):                 u = min(max(g, −δ), δ)             element by element
    clip_by_global_norm(c):  u = g · min(1, c / ‖g‖),  ‖g‖ = √(Σ_leaves Σ g²)

The global norm keeps the gradient's direction; element-wise clipping does not.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jdl.optim.base import EmptyState, GradientTransformation, check_positive, map_updates


def global_norm(tree) -> jax.Array:
    """‖g‖ = √(Σ over all leaves and elements of g²), a scalar."""
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


def clip(max_delta: float) -> GradientTransformation:
    """u = clip(g, −δ, δ) element-wise. Shapes: u has g's shapes. Args: max_delta: δ > 0."""
    check_positive("clip", "max_delta", max_delta)

    def update(grads, state, params=None):
        del params
        return map_updates(lambda g: jnp.clip(g, -max_delta, max_delta), grads), state

    return GradientTransformation(lambda params: EmptyState(), update)


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    """u = g if ‖g‖ < c, else g·c/‖g‖ (the whole tree rescaled together).

    Shapes: u has g's shapes; ‖g‖ is a scalar. Args: max_norm: c > 0.
    """
    check_positive("clip_by_global_norm", "max_norm", max_norm)

    def update(grads, state, params=None):
        del params
        norm = global_norm(grads)
        small = norm < max_norm
        return map_updates(lambda g: jnp.where(small, g, g / norm.astype(g.dtype) * max_norm), grads), state

    return GradientTransformation(lambda params: EmptyState(), update)
