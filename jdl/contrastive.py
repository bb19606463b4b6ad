"""Losses on embeddings (metric and contrastive learning): the triplet loss with a margin, its
batch-hard form (Hermans, Beyer & Leibe, 2017), and SimCLR's NT-Xent (Chen et al., 2020).

They take embeddings, not (prediction, target) pairs; like ``jdl.losses`` they reduce with
``reduction='mean'`` (the default), ``'sum'`` or ``'none'`` (one value per anchor).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jdl.losses import _reduce
from jdl.nn.activations import log_softmax


def _check_embeddings(name: str, *arrays: jax.Array) -> None:
    shapes = [tuple(jnp.shape(a)) for a in arrays]
    if any(len(s) != 2 for s in shapes) or len(set(shapes)) != 1:
        raise ValueError(f"{name}: expected embeddings of one shape (B, D), got shapes {shapes}")


def safe_sqrt(d2: jax.Array) -> jax.Array:
    """√d² with a zero (not infinite, not NaN) gradient at d² = 0: the distance of a point to
    itself appears in every pairwise matrix, and ∂√u/∂u = 1/(2√u) is infinite there."""
    positive = d2 > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, d2, 1.0)), 0.0)


def pairwise_sq_distances(x: jax.Array) -> jax.Array:
    """D²_ij = ‖x_i − x_j‖² = ‖x_i‖² + ‖x_j‖² − 2 x_i·x_j, clipped at 0 (the expansion can
    round slightly below zero), with exact zeros on the diagonal.

    Shapes: x (B, D) → (B, B).
    """
    sq = jnp.sum(jnp.square(x), axis=1)  # (B,)
    d2 = sq[:, None] + sq[None, :] - 2.0 * x @ x.T  # (B, B)
    return jnp.where(jnp.eye(x.shape[0], dtype=bool), 0.0, jnp.maximum(d2, 0.0))


def triplet_loss(anchor: jax.Array, positive: jax.Array, negative: jax.Array, margin: float = 1.0,
                 squared: bool = True, reduction: str = "mean") -> jax.Array:
    """The triplet loss: pull the positive closer to the anchor than the negative, by a margin m:

        ℓ_i = max(0, d(a_i, p_i) − d(a_i, n_i) + m)

    with d the squared Euclidean distance ‖a − p‖² (``squared=True``, FaceNet's form, the
    default) or the Euclidean distance ‖a − p‖ (``squared=False``, ``torch.nn.TripletMarginLoss``
    with p = 2, up to its eps). A triplet already separated by the margin contributes nothing.

    Shapes: anchor, positive, negative (B, D) → a scalar, or (B,) with ``reduction='none'``.
    """
    _check_embeddings("triplet_loss", anchor, positive, negative)
    d_ap = jnp.sum(jnp.square(anchor - positive), axis=1)  # (B,)
    d_an = jnp.sum(jnp.square(anchor - negative), axis=1)
    if not squared:
        d_ap, d_an = safe_sqrt(d_ap), safe_sqrt(d_an)
    return _reduce(jnp.maximum(d_ap - d_an + margin, 0.0), reduction)


def batch_hard_triplet_loss(embeddings: jax.Array, labels: jax.Array, margin: float = 1.0,
                            squared: bool = False, reduction: str = "mean") -> jax.Array:
    """The batch-hard triplet loss (Hermans et al., 2017): every example is an anchor, paired with
    the hardest positive (the farthest example of its class, itself excluded) and the hardest
    negative (the nearest example of another class) in the batch:

        ℓ_a = max(0, max_{p: y_p = y_a, p ≠ a} d(a, p) − min_{n: y_n ≠ y_a} d(a, n) + m)

    d is the Euclidean distance (``squared=False``, the paper's choice) or its square. The mean
    runs over the anchors that have both a positive and a negative in the batch (batches are
    drawn as P classes × K examples); with ``reduction='none'`` the others read 0.

    Shapes: embeddings (B, D), labels (B,) integers → a scalar, or (B,).
    """
    if embeddings.ndim != 2 or labels.shape != embeddings.shape[:1]:
        raise ValueError(f"batch_hard_triplet_loss: expected embeddings (B, D) and labels (B,), got "
                         f"{tuple(embeddings.shape)} and {tuple(labels.shape)}")
    d = pairwise_sq_distances(embeddings)  # (B, B)
    if not squared:
        d = safe_sqrt(d)
    same = labels[:, None] == labels[None, :]  # (B, B)
    pos_mask = same & ~jnp.eye(labels.shape[0], dtype=bool)
    hardest_pos = jnp.max(jnp.where(pos_mask, d, -jnp.inf), axis=1)  # (B,)
    hardest_neg = jnp.min(jnp.where(same, jnp.inf, d), axis=1)  # (B,)
    valid = jnp.any(pos_mask, axis=1) & jnp.any(~same, axis=1)
    per_anchor = jnp.where(valid, jnp.maximum(hardest_pos - hardest_neg + margin, 0.0), 0.0)
    return _reduce(per_anchor, reduction, where=valid.astype(embeddings.dtype) if reduction == "mean" else None)


def cosine_similarity_matrix(z: jax.Array, eps: float = 1e-8) -> jax.Array:
    """S_ij = z_i·z_j / (‖z_i‖ ‖z_j‖), each norm floored at eps. Shapes: z (B, D) → (B, B)."""
    u = z / jnp.maximum(jnp.linalg.norm(z, axis=1, keepdims=True), eps)  # (B, D), unit rows
    return u @ u.T


def nt_xent(z1: jax.Array, z2: jax.Array, temperature: float = 0.5, reduction: str = "mean") -> jax.Array:
    """SimCLR's normalized-temperature cross-entropy over the 2N views of N examples.

    With z = [z1; z2] (2N, D), s_ij = cos(z_i, z_j) and the positive of view i its other view
    p(i) = i + N (mod 2N), each view is a (2N − 1)-way classification of its positive among
    all the other views:

        ℓ_i = −log [ exp(s_{i,p(i)}/τ) / Σ_{k ≠ i} exp(s_ik/τ) ]

    and the loss is the mean of ℓ_i over all 2N views (both directions of every pair). The self-
    similarity s_ii = 1 is masked out of the denominator; the other 2N − 2 views are negatives.

    Shapes: z1, z2 (N, D), the two views' projections → a scalar, or (2N,) with 'none'.

    Two orthogonal examples seen identically: ℓ = −log(e/(e + 2)) = log(1 + 2/e) at τ = 1.

    >>> import jax.numpy as jnp
    >>> round(float(nt_xent(jnp.eye(2), jnp.eye(2), temperature=1.0)), 4)
    0.5514
    """
    _check_embeddings("nt_xent", z1, z2)
    if not temperature > 0:
        raise ValueError(f"nt_xent: temperature must be > 0, got {temperature!r}")
    n = z1.shape[0]
    logits = cosine_similarity_matrix(jnp.concatenate([z1, z2])) / temperature  # (2N, 2N)
    logits = jnp.where(jnp.eye(2 * n, dtype=bool), -jnp.inf, logits)
    positive = jnp.concatenate([jnp.arange(n, 2 * n), jnp.arange(n)])  # (2N,): i ↔ i + N
    log_p = log_softmax(logits)  # (2N, 2N), row i over k ≠ i
    per_view = -jnp.take_along_axis(log_p, positive[:, None], axis=1)[:, 0]  # (2N,)
    return _reduce(per_view, reduction)


def positive_pair_accuracy(z1: jax.Array, z2: jax.Array) -> jax.Array:
    """The share of the 2N views whose most similar other view (cosine) is their own positive:
    the top-1 accuracy of NT-Xent's classification, a training metric. Shapes: (N, D) → ()."""
    n = z1.shape[0]
    s = cosine_similarity_matrix(jnp.concatenate([z1, z2]))  # (2N, 2N)
    s = jnp.where(jnp.eye(2 * n, dtype=bool), -jnp.inf, s)
    positive = jnp.concatenate([jnp.arange(n, 2 * n), jnp.arange(n)])
    return jnp.mean(jnp.argmax(s, axis=1) == positive)
