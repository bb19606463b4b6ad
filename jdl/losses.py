"""Loss functions. Each takes predictions first and targets second, returns the mean over
examples (``reduction='mean'``), their sum (``'sum'``) or one value per example (``'none'``),
and checks at trace time that the two shapes agree."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jdl.nn.activations import log_softmax

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(values: jax.Array, reduction: str, where: jax.Array | None = None) -> jax.Array:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"loss: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if reduction == "none":
        return values
    if where is not None:
        values = values * where
    total = jnp.sum(values)
    if reduction == "sum":
        return total
    count = values.size if where is None else jnp.maximum(jnp.sum(where), 1)
    return total / count


def _same_shape(name: str, pred: jax.Array, target: jax.Array) -> None:
    if jnp.shape(pred) != jnp.shape(target):
        raise ValueError(f"{name}: predictions have shape {jnp.shape(pred)} but targets have "
                         f"shape {jnp.shape(target)}; they must match")


def mse(pred: jax.Array, target: jax.Array, reduction: str = "mean") -> jax.Array:
    """Mean squared error: ℓ = mean_i (ŷ_i − y_i)²; ∂ℓ/∂ŷ_i = 2(ŷ_i − y_i)/n.

    Shapes: pred and target of one shape (...); 'none' returns the per-element squares.
    """
    _same_shape("mse", pred, target)
    return _reduce(jnp.square(pred - target), reduction)


def binary_cross_entropy(prob: jax.Array, target: jax.Array, reduction: str = "mean",
                         eps: float = 1e-7) -> jax.Array:
    """Binary cross-entropy on probabilities: ℓ = −[y log ŷ + (1 − y) log(1 − ŷ)].

    ŷ is clipped to [eps, 1 − eps] so log(0) never happens; prefer
    ``sigmoid_binary_cross_entropy`` on logits, which is exact and stable.
    Shapes: prob and target of one shape (...), target in [0, 1].
    """
    _same_shape("binary_cross_entropy", prob, target)
    p = jnp.clip(prob, eps, 1 - eps)
    return _reduce(-(target * jnp.log(p) + (1 - target) * jnp.log1p(-p)), reduction)


def sigmoid_binary_cross_entropy(logits: jax.Array, target: jax.Array,
                                 reduction: str = "mean") -> jax.Array:
    """Binary cross-entropy on logits z, with ŷ = σ(z):

        ℓ = −[y log σ(z) + (1 − y) log(1 − σ(z))] = max(z, 0) − z·y + log(1 + e^{−|z|}),

    the right-hand form is exact and never overflows (stable for |z| of 1e4). Its gradient is
    ∂ℓ/∂z = σ(z) − y (the course's "ŷ − y").
    Shapes: logits and target of one shape (...).
    """
    _same_shape("sigmoid_binary_cross_entropy", logits, target)
    z = logits
    return _reduce(jnp.maximum(z, 0) - z * target + jnp.log1p(jnp.exp(-jnp.abs(z))), reduction)


def softmax_cross_entropy(logits: jax.Array, labels: jax.Array, reduction: str = "mean",
                          label_smoothing: float = 0.0, where: jax.Array | None = None) -> jax.Array:
    """Cross-entropy of softmax(z) against labels: ℓ = −Σ_k y_k log softmax(z)_k
    = log Σ_j e^{z_j} − Σ_k y_k z_k (computed with log-sum-exp: stable for any logits).
    Its gradient is ∂ℓ/∂z = softmax(z) − y.

    With label smoothing ε the target is y' = (1 − ε)·y + ε/K.

    Shapes: logits (..., K); labels either integer class indices (...) or one-hot /
    probabilities (..., K). ``where`` (...) masks examples out of the mean (padding).
    """
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"softmax_cross_entropy: label_smoothing must be in [0, 1), got {label_smoothing}")
    k = logits.shape[-1]
    if jnp.issubdtype(labels.dtype, jnp.integer):
        if labels.shape != logits.shape[:-1]:
            raise ValueError(
                f"softmax_cross_entropy: integer labels must have shape {logits.shape[:-1]} "
                f"(logits {logits.shape} without the class axis K={k}), got {labels.shape}")
        labels = jax.nn.one_hot(labels, k, dtype=logits.dtype)
    elif labels.shape != logits.shape:
        raise ValueError(
            f"softmax_cross_entropy: one-hot labels must have the logits' shape {logits.shape}, "
            f"got {labels.shape} (integer class labels of shape {logits.shape[:-1]} also work)")
    if label_smoothing:
        labels = (1 - label_smoothing) * labels + label_smoothing / k
    per_example = -jnp.sum(labels * log_softmax(logits), axis=-1)
    return _reduce(per_example, reduction, where)
