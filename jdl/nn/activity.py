"""Activity (activation) L1 regularization: penalize a layer's outputs, not its weights.

The course's "ReLU + L1 penalty to prune dead activations" (improving generalization, reducing
a network's capacity): with a = f_θ(x) the outputs of a layer on a batch of B examples,

    J(θ) = L(θ) + λ·R(a),   R(a) = 1/B · Σ_b Σ_j |a_bj|      (``jdl.regularizers.activity_l1``)
    ∂(λR)/∂a_bj = λ/B · sign(a_bj)                            (subgradient 0 at 0)

R is a mean over the batch, as the data loss is, so λ does not depend on the batch size (Keras's
``ActivityRegularization`` divides by the batch size the same way).

A loss term that depends on activations does not fit a penalty on params (``fit(penalty=...)``
sees θ only), so ``ActivityL1(λ)`` adds the term's *gradient* instead: in training it is the
identity on the forward pass and adds λ/B·sign(a) to the gradient arriving at a on the
backward pass, which is exactly the gradient of J. Any loss and any training loop (``fit``,
``make_step``) then minimize J unchanged; the reported loss is L alone (compute λ·R with
``activity_l1`` to log it). In evaluation the layer is the identity.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from jdl.core import Module, Params, PRNGKey, State, leaf


@partial(jax.custom_vjp, nondiff_argnums=(1,))
def add_l1_gradient(a: jax.Array, scale: float) -> jax.Array:
    """Identity forward, ḡ_a ← ḡ_a + scale·sign(a) backward: ∂/∂a of scale·Σ|a| is added to
    whatever gradient reaches a. Shapes: a (...) → a (...)."""
    del scale
    return a


def _forward(a, scale):
    del scale
    return a, jnp.sign(a)


def _backward(scale, sign, g):
    return ((g + scale * sign).astype(g.dtype),)


add_l1_gradient.defvjp(_forward, _backward)


def ActivityL1(coef: float) -> Module:
    """An identity layer that adds λ/B·Σ|a| to the objective of training (see the module
    docstring): put it after the layer whose outputs a should be sparse,
    ``serial(Dense(64), relu, ActivityL1(1e-3), Dense(10))``.

    Train: y = a, and ∂J/∂a = ∂L/∂a + λ/B·sign(a). Eval: y = a. No params, no state.

    Shapes: a (B, ...) → (B, ...). Args: coef: λ ≥ 0.
    """
    if not coef >= 0:
        raise ValueError(f"ActivityL1: coef must be >= 0, got {coef!r}")

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        del key, x
        return {}, {}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False):
        del params, key
        if x.ndim < 1:
            raise ValueError(f"ActivityL1: expected outputs (B, ...) with a batch axis, got shape {tuple(x.shape)}")
        if not train or coef == 0:
            return x, state
        return add_l1_gradient(x, coef / x.shape[0]), state

    return leaf(init, apply, "activity_l1")
