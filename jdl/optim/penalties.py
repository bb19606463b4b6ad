"""Penalty gradients added to the loss gradient: u = g + ∇R(θ) for a regularizer R.

    L2, R = λ/2·‖θ‖²:   ∇R = λ·θ           ("weight decay" for SGD: θ ← (1 − ηλ)·θ − η·g)
    the lecture's L2, R = λ/n·Σ_l ‖W_l‖_F²: ∇R = 2λ/n·θ, i.e. ``add_l2_penalty(2λ/n)``
    the sheets' L2 without ½, R = λ·‖θ‖²:   ∇R = 2λ·θ, i.e. ``add_l2_penalty(2λ)``
    L1, R = λ·‖θ‖₁:     ∇R = λ·sign(θ)     (the subgradient 0 at θ = 0)

Penalize weights, not biases: pass ``mask=jdl.optim.weights_only``.
"""

from __future__ import annotations

import jax.numpy as jnp

from jdl.optim.base import EmptyState, GradientTransformation, check_nonnegative
from jdl.optim.masking import Mask, add_to_masked
from jdl.optim.weight_decay import add_decayed_weights


def add_l2_penalty(strength: float, mask: Mask | None = None) -> GradientTransformation:
    """u = g + λ·θ, the gradient of λ/2·‖θ‖² (the same transformation as ``add_decayed_weights``).

    Shapes: u has g's shapes. Args: strength: λ ≥ 0; mask: which leaves to penalize.
    """
    check_nonnegative("add_l2_penalty", "strength", strength)
    return add_decayed_weights(strength, mask)


def add_l1_penalty(strength: float, mask: Mask | None = None) -> GradientTransformation:
    """u = g + λ·sign(θ), the subgradient of λ·‖θ‖₁ (0 where θ = 0). ``update`` needs params.

    Shapes: u has g's shapes. Args: strength: λ ≥ 0; mask: which leaves to penalize.
    """
    check_nonnegative("add_l1_penalty", "strength", strength)

    def update(grads, state, params=None):
        return add_to_masked("add_l1_penalty", lambda p: strength * jnp.sign(p), grads, params, mask), state

    return GradientTransformation(lambda params: EmptyState(), update)
