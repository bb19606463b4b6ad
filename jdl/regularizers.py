"""Weight penalties added to a loss: J(θ) = L(θ) + λ₁·‖w‖₁ + λ₂/2·‖w‖₂².

    L2:  λ/2·‖w‖² = λ/2·Σ_i w_i²,   ∇ = λ·w          (shrinks every weight, never to exactly 0)
    L1:  λ·‖w‖₁  = λ·Σ_i |w_i|,     ∇ = λ·sign(w)    (subgradient 0 at 0; drives weights to 0)

Only the weights ``w`` are penalized by default, not biases ``b`` nor the ``gamma``/``beta`` of
norm layers, as in the course's PyTorch loop (``if 'weight' in name``); ``select`` chooses
otherwise.

The lecture's form (1/n)·Σ_l L(…) + λ/n·Σ_l ‖W_l‖_F² (a sum of squared Frobenius norms over the
layers, gradient 2λ/n·w) is ``l2`` with coefficient 2λ/n. Other course sheets add λ‖w‖² with no ½
(gradient 2λ·w; so does the regularized least squares of ``classic.normal_equation``): that is
``penalty(l2_coef=2λ)``. jdl's λ₂ always multiplies ½‖w‖², as the cheat sheet and optax do.

**L2 in the loss and weight decay.** With plain SGD, adding λ/2·‖w‖² to the loss gives
w ← w − η(∇L + λw) = (1 − ηλ)·w − η∇L: exactly "weight decay" with factor ηλ (PyTorch's
``SGD(weight_decay=λ)``, or ``jdl.optim.add_decayed_weights(λ)`` chained before ``sgd``). With
Adam they differ: the L2 gradient λw enters the moments and is divided by √v̂, so weights with
large gradients are decayed less; AdamW decouples the decay, w ← w − η(m̂/(√v̂ + ε) + λw), which
decays every weight at the same rate (Loshchilov & Hutter, 2019).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from jdl.core import is_weight

Select = Callable[[tuple, jax.Array], bool]  # (path of keys, leaf) -> penalize it?


def weights_only(path: tuple, leaf: jax.Array) -> bool:
    """Select the leaves stored under the key ``w`` (Dense and convolution weights)."""
    del leaf
    return is_weight(path)


def all_params(path: tuple, leaf: jax.Array) -> bool:
    """Select every leaf (biases and norm parameters too)."""
    del path, leaf
    return True


def _selected(params: Any, select: Select) -> list[jax.Array]:
    return [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(params) if select(path, leaf)]


def l2(params: Any, select: Select = weights_only) -> jax.Array:
    """½·‖w‖₂² = ½·Σ_i w_i² over the selected leaves (gradient w); 0 when none is selected.

    Shapes: params a pytree of arrays → a scalar.
    """
    leaves = _selected(params, select)
    return 0.5 * sum((jnp.sum(jnp.square(w)) for w in leaves), jnp.zeros(()))


def l1(params: Any, select: Select = weights_only) -> jax.Array:
    """‖w‖₁ = Σ_i |w_i| over the selected leaves (subgradient sign(w), 0 at 0).

    Shapes: params a pytree of arrays → a scalar.
    """
    leaves = _selected(params, select)
    return sum((jnp.sum(jnp.abs(w)) for w in leaves), jnp.zeros(()))


def penalty(l1_coef: float = 0.0, l2_coef: float = 0.0,
            select: Select = weights_only) -> Callable[[Any], jax.Array]:
    """A penalty function for a loss or ``jdl.train.fit(penalty=...)``:

        R(θ) = λ₁·‖w‖₁ + λ₂/2·‖w‖₂²,   λ₁ = ``l1_coef``, λ₂ = ``l2_coef``.

    >>> import jax.numpy as jnp
    >>> round(float(penalty(l1_coef=0.1, l2_coef=1.0)({'w': jnp.array([3.0, -4.0]), 'b': jnp.ones(2)})), 4)
    13.2
    """
    if l1_coef < 0 or l2_coef < 0:
        raise ValueError(f"penalty: the coefficients must be >= 0, got l1_coef={l1_coef}, l2_coef={l2_coef}")

    def regularizer(params: Any) -> jax.Array:
        total = jnp.zeros(())
        if l1_coef:
            total = total + l1_coef * l1(params, select)
        if l2_coef:
            total = total + l2_coef * l2(params, select)
        return total

    return regularizer


def activity_l1(a: jax.Array) -> jax.Array:
    """R(a) = 1/B · Σ_b Σ_j |a_bj|: the L1 norm of a layer's outputs per example, averaged over
    the batch (subgradient sign(a)/B). ``jdl.nn.ActivityL1(λ)`` adds λ·R's gradient in training.

    Shapes: a (B, ...) → a scalar.
    """
    if jnp.ndim(a) < 1:
        raise ValueError(f"activity_l1: expected outputs (B, ...) with a batch axis, got shape {jnp.shape(a)}")
    return jnp.sum(jnp.abs(a)) / a.shape[0]
