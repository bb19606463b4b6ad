"""Detection losses: box regression (smooth-L1 of Fast R-CNN, least squares of R-CNN) and the
hinge loss of R-CNN's per-class linear SVMs.

R-CNN trained its pieces separately — log loss to fine-tune the CNN, a hinge loss for the
SVMs, least squares for the box regressors — while Fast R-CNN trains softmax over C + 1 classes
and smooth-L1 box regression together. Box losses sum over the four coordinates (d_x, d_y, d_w,
d_h) and average over the boxes ``where`` is true (the positives): padded and background boxes
have no regression target.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jdl.losses import _reduce, _same_shape


def _box_mask(name: str, pred: jax.Array, where: jax.Array | None) -> None:
    if jnp.shape(pred)[-1:] != (4,):
        raise ValueError(f"{name}: box offsets must end in 4 coordinates (d_x, d_y, d_w, d_h), got {jnp.shape(pred)}")
    if where is not None and jnp.shape(where) != jnp.shape(pred)[:-1]:
        raise ValueError(f"{name}: where must have the boxes' shape {jnp.shape(pred)[:-1]}, got {jnp.shape(where)}")


def smooth_l1(pred: jax.Array, target: jax.Array, beta: float = 1.0, where: jax.Array | None = None,
              reduction: str = "mean") -> jax.Array:
    """Fast R-CNN's box loss: ℓ = Σ_{i ∈ x,y,w,h} smooth_L1(d_i − t_i), with

        smooth_L1(z) = z²/(2β) if |z| < β, else |z| − β/2

    (quadratic near 0, linear — so robust to outliers — beyond β; β = 1 in Fast R-CNN).
    Args:
      pred: predicted offsets d; target: encoded targets t; beta: the quadratic zone's half width;
      where: the boxes that count (positives); reduction: 'mean' (over ``where``), 'sum' or 'none'.
    Shapes: pred, target (..., 4); where (...) bool → mean over the boxes where true (or 'sum',
    or 'none': the per-box losses (...)).
    """
    _same_shape("smooth_l1", pred, target)
    _box_mask("smooth_l1", pred, where)
    if beta <= 0:
        raise ValueError(f"smooth_l1: beta must be > 0, got {beta}")
    z = jnp.abs(pred - target)
    per_box = jnp.sum(jnp.where(z < beta, 0.5 * z ** 2 / beta, z - 0.5 * beta), axis=-1)
    return _reduce(per_box, reduction, where)


def box_least_squares(pred: jax.Array, target: jax.Array, where: jax.Array | None = None,
                      reduction: str = "mean") -> jax.Array:
    """R-CNN's box regression loss: ℓ = Σ_{i ∈ x,y,w,h} (t_i − d_i)², d_i = w_iᵀ φ(P) (its
    regressors are ridge regression: add λ‖w_i‖² with ``jdl.regularizers``).
    Shapes: pred, target (..., 4); where (...) bool → as ``smooth_l1``.
    """
    _same_shape("box_least_squares", pred, target)
    _box_mask("box_least_squares", pred, where)
    return _reduce(jnp.sum((pred - target) ** 2, axis=-1), reduction, where)


def hinge(scores: jax.Array, target: jax.Array, where: jax.Array | None = None, reduction: str = "mean") -> jax.Array:
    """The linear SVM's hinge loss: ℓ = max(0, 1 − y·s), y ∈ {−1, +1}, s = wᵀx + b (R-CNN trains
    one such SVM per class, region features of that class against the rest); the SVM objective
    adds (λ/2)‖w‖². Zero once an example is on the right side with margin 1; ∂ℓ/∂s = −y inside.
    Shapes: scores and target (...) → mean over the entries where ``where`` (or 'sum'/'none').
    """
    _same_shape("hinge", scores, target)
    if where is not None and jnp.shape(where) != jnp.shape(scores):
        raise ValueError(f"hinge: where must have the scores' shape {jnp.shape(scores)}, got {jnp.shape(where)}")
    return _reduce(jnp.maximum(0.0, 1.0 - target * scores), reduction, where)
