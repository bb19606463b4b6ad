"""Evaluation metrics (host-free, jittable)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def accuracy(logits: jax.Array, labels: jax.Array, where: jax.Array | None = None) -> jax.Array:
    """Fraction of examples whose arg-max class equals the label: mean_i [argmax_k z_ik = y_i].

    Shapes: logits (..., K); labels integer (...) or one-hot (..., K); ``where`` (...) masks
    padded examples out.
    """
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        if labels.shape != logits.shape:
            raise ValueError(f"accuracy: one-hot labels must have the logits' shape {logits.shape}, got {labels.shape}")
        labels = jnp.argmax(labels, axis=-1)
    if labels.shape != logits.shape[:-1]:
        raise ValueError(f"accuracy: labels must have shape {logits.shape[:-1]}, got {labels.shape}")
    correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
    if where is None:
        return jnp.mean(correct)
    return jnp.sum(correct * where) / jnp.maximum(jnp.sum(where), 1)
