"""Exact nearest-neighbour search by cosine similarity, batched, in ``jnp``; and recall@k.

    cos(q, p) = qᵀp / (‖q‖ ‖p‖),   top-k(q) = the k passages of largest cos(q, p)

The index is a matrix of unit-norm passage embeddings E (N, D); a batch of queries Q (B, D)
is scored against all of it with one matmul, Q̂ Êᵀ (B, N), and ``jax.lax.top_k`` keeps the k
best of each row. The queries go through in fixed-size batches under ``jax.lax.map`` (one
compiled program, peak memory B·N scores), so any number of queries fits.
"""

from __future__ import annotations

from typing import Any, Iterable

import jax
import jax.numpy as jnp
import numpy as np


def l2_normalize(x: Any, eps: float = 1e-12) -> jax.Array:
    """x / max(‖x‖, ε) along the last axis (a zero vector stays zero).

    Shapes: x (..., D) → (..., D)."""
    x = jnp.asarray(x)
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


def _check(name: str, queries: Any, index: Any, k: int) -> None:
    if queries.ndim != 2 or index.ndim != 2 or queries.shape[1] != index.shape[1]:
        raise ValueError(f"{name}: expected queries (Q, D) and an index (N, D) of the same D, got "
                         f"{tuple(queries.shape)} and {tuple(index.shape)}")
    if not isinstance(k, int) or not 1 <= k <= index.shape[0]:
        raise ValueError(f"{name}: k must be an int in 1..N={index.shape[0]}, got {k!r}")


def cosine_top_k(queries: Any, index: Any, k: int, batch_size: int = 256) -> tuple[jax.Array, jax.Array]:
    """The k index rows of highest cosine similarity to each query, best first (ties to the
    lower row, as ``jax.lax.top_k``), exact: every query is scored against every row.

    Shapes: queries (Q, D), index (N, D) → scores (Q, k) float, ids (Q, k) int32.
    """
    queries, index = jnp.asarray(queries, jnp.float32), jnp.asarray(index, jnp.float32)
    _check("cosine_top_k", queries, index, k)
    return _top_k(queries, index, k, min(batch_size, queries.shape[0]))


@jax.jit
def _scores(q: jax.Array, e: jax.Array) -> jax.Array:
    return q @ e.T  # (B, N)


def _top_k_impl(queries, index, k, batch_size):
    Q, D = queries.shape
    e = l2_normalize(index)  # (N, D)
    pad = -Q % batch_size
    q = l2_normalize(jnp.concatenate([queries, jnp.zeros((pad, D), queries.dtype)]))  # (Q + pad, D)
    q = q.reshape(-1, batch_size, D)  # (Q' / B, B, D)
    scores, ids = jax.lax.map(lambda qb: jax.lax.top_k(_scores(qb, e), k), q)  # (Q'/B, B, k) each
    return scores.reshape(-1, k)[:Q], ids.reshape(-1, k)[:Q].astype(jnp.int32)  # (Q, k)


_top_k = jax.jit(_top_k_impl, static_argnums=(2, 3))


def recall_at_k(ids: Any, targets: Any, ks: Iterable[int] = (1, 5, 10)) -> dict[int, float]:
    """recall@k = (1/Q) Σ_q [target_q ∈ the first k of ids_q]: the share of queries whose
    right passage is among the k retrieved.

    Shapes: ids (Q, K) ranked, targets (Q,) → {k: float} for each k ≤ K.
    """
    ids, targets = np.asarray(ids), np.asarray(targets)
    if ids.ndim != 2 or targets.shape != ids.shape[:1]:
        raise ValueError(f"recall_at_k: expected ids (Q, K) and targets (Q,), got {ids.shape} and {targets.shape}")
    hit = ids == targets[:, None]  # (Q, K)
    out = {}
    for k in ks:
        if not 1 <= k <= ids.shape[1]:
            raise ValueError(f"recall_at_k: k={k} is outside 1..K={ids.shape[1]} (the retrieved list's length)")
        out[k] = float(hit[:, :k].any(axis=1).mean())
    return out
