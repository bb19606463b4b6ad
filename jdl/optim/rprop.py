"""Rprop, resilient backpropagation (Riedmiller & Braun, 1993), in the iRprop⁻ form of Igel &
Hüsken (2000) that the course cites as RMSProp's ancestor and optax implements.

Only the SIGN of each coordinate's gradient is used, with a step size Δ per coordinate that
follows the course's rule of thumb: grow it while the gradient keeps its direction, shrink it
when the direction flips.

    s = g_t · g_{t−1}
    Δ_t = min(Δ_{t−1}·η⁺, Δ_max)   if s > 0
          max(Δ_{t−1}·η⁻, Δ_min)   if s < 0
          Δ_{t−1}                  if s = 0
    u_t = −Δ_t·sign(g_t)           if s ≥ 0;    u_t = 0 and g_t ← 0 if s < 0

Storing g_t ← 0 after a flip makes the next step's s = 0, so Δ is not shrunk twice (the "−"
of iRprop⁻). Δ starts at the learning rate. Meant for full-batch training: minibatch noise
flips signs at random.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jdl.optim.base import GradientTransformation, check_positive, is_none


class RpropState(NamedTuple):
    """delta: the per-coordinate step sizes Δ; g_prev: the previous gradient's sign
    (0 where it flipped), one leaf per param."""

    delta: Any
    g_prev: Any


def scale_by_rprop(learning_rate: float, eta_minus: float = 0.5, eta_plus: float = 1.2,
                   min_step_size: float = 1e-6, max_step_size: float = 50.0) -> GradientTransformation:
    """u = −Δ·sign(g) with Δ adapted by sign agreement (see the module docstring); the
    returned update already points downhill (optax's ``scale_by_rprop`` then ``scale(−1)``).

    Shapes: Δ and g_prev have the params' leaves' shapes.
    Args: learning_rate: Δ₀ > 0; eta_minus: η⁻ in (0, 1); eta_plus: η⁺ > 1;
      min_step_size, max_step_size: Δ_min ≤ Δ_max.
    """
    check_positive("scale_by_rprop", "learning_rate", learning_rate)
    if not 0 < eta_minus < 1 < eta_plus:
        raise ValueError(f"scale_by_rprop: need 0 < eta_minus < 1 < eta_plus, got {eta_minus!r}, {eta_plus!r}")
    if not 0 <= min_step_size <= max_step_size:
        raise ValueError(f"scale_by_rprop: need 0 <= min_step_size <= max_step_size, got "
                         f"{min_step_size!r}, {max_step_size!r}")

    def init(params):
        return RpropState(delta=jax.tree.map(lambda p: jnp.full_like(p, learning_rate), params),
                          g_prev=jax.tree.map(jnp.zeros_like, params))

    def leaf_update(g, delta, g_prev):
        s = jnp.sign(g) * g_prev
        factor = jnp.where(s > 0, eta_plus, eta_minus)
        delta = jnp.where(s == 0, delta, jnp.clip(delta * factor, min_step_size, max_step_size))
        g_sign = jnp.where(s < 0, jnp.zeros_like(g), jnp.sign(g))
        return -delta * g_sign, delta, g_sign

    def update(grads, state, params=None):
        del params
        out = jax.tree.map(lambda g, d, p: (None, d, p) if g is None else leaf_update(g, d, p),
                           grads, state.delta, state.g_prev, is_leaf=is_none)  # a None g: a frozen param
        pick = lambda i: jax.tree.map(lambda _, o: o[i], grads, out, is_leaf=is_none)
        return pick(0), RpropState(delta=pick(1), g_prev=pick(2))

    return GradientTransformation(init, update)
