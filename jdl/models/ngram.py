"""Count-based character language models: a unigram, an add-k bigram and an interpolated
Kneser–Ney bigram, the baselines a neural language model has to beat.

Each model is a table P of shape (V, V) with P[a, b] = p(b | a), the probability that token
b follows token a; every row sums to 1 (the unigram's rows are all the same, p(b)). A table is
fitted on one stream of token ids (a training split) and scored on another by its cross-entropy

    H = −(1/N) Σ_t ln P[a_t, b_t]  nats,   or H / ln 2 bits per character,

over pairs (a_t, b_t) of a context and the token that follows it: (ids[:−1], ids[1:]) of a
stream, or the (x, y) windows a neural model is scored on. Smoothing gives every pair a
non-zero probability, so a pair never seen in training costs bits instead of infinity.

Host-side numpy throughout (float64): counting is not a thing to jit.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _check_ids(name: str, ids: Any, vocab_size: int) -> np.ndarray:
    """``ids`` as a 1-D int64 array of ids in 0..V−1, else a ValueError/TypeError naming ``name``."""
    if not isinstance(vocab_size, (int, np.integer)) or vocab_size < 1:
        raise ValueError(f"{name}: vocab_size must be a positive int, got {vocab_size!r}")
    ids = np.asarray(ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"{name}: expected a 1-D stream of integer ids (L,), got shape {ids.shape} "
                        f"dtype {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"{name}: ids must lie in 0..{vocab_size - 1} (vocab_size={vocab_size}), got "
                         f"ids from {ids.min()} to {ids.max()}")
    return ids.astype(np.int64)


def bigram_counts(ids: Any, vocab_size: int) -> np.ndarray:
    """c[a, b] = #{t : ids[t] = a and ids[t + 1] = b}, the counts of adjacent pairs.

    Shapes: ids (L,) → c (V, V) int64, summing to L − 1.

    >>> bigram_counts([0, 1, 0, 1], 2).tolist()
    [[0, 2], [1, 0]]
    """
    ids = _check_ids("bigram_counts", ids, vocab_size)
    c = np.zeros((vocab_size, vocab_size), np.int64)
    np.add.at(c, (ids[:-1], ids[1:]), 1)
    return c


def _check_positive(name: str, what: str, value: float, upper: float | None = None) -> None:
    if not value > 0 or (upper is not None and value > upper):
        bound = f"in (0, {upper}]" if upper is not None else "> 0"
        raise ValueError(f"{name}: {what} must be {bound}, got {value!r}")


def unigram(ids: Any, vocab_size: int, k: float = 1.0) -> np.ndarray:
    """The add-k unigram: p(b) = (n_b + k) / (N + k·V), whatever came before.

    n_b counts b in the N ids; k > 0 gives tokens never seen a small probability (k = 1 is
    Laplace's add-one rule).

    Shapes: ids (L,) → P (V, V) float64, every row the same distribution p.
    """
    _check_positive("unigram", "k", k)
    ids = _check_ids("unigram", ids, vocab_size)
    n = np.bincount(ids, minlength=vocab_size).astype(np.float64)  # (V,)
    p = (n + k) / (n.sum() + k * vocab_size)  # (V,)
    return np.broadcast_to(p, (vocab_size, vocab_size)).copy()


def add_k_bigram(ids: Any, vocab_size: int, k: float = 1.0) -> np.ndarray:
    """The add-k bigram: p(b | a) = (c(a, b) + k) / (c(a) + k·V), c(a) = Σ_b c(a, b).

    Every pair gets k pseudo-counts; a context never seen gives the uniform 1/V.

    Shapes: ids (L,) → P (V, V) float64, rows summing to 1.
    """
    _check_positive("add_k_bigram", "k", k)
    c = bigram_counts(ids, vocab_size).astype(np.float64)  # (V, V)
    return (c + k) / (c.sum(axis=1, keepdims=True) + k * vocab_size)


def kneser_ney_bigram(ids: Any, vocab_size: int, d: float = 0.75) -> np.ndarray:
    """The interpolated Kneser–Ney bigram (Chen & Goodman's form):

        p(b | a) = max(c(a, b) − d, 0) / c(a) + λ(a)·p_cont(b),   λ(a) = d·N₁₊(a•) / c(a),
        p_cont(b) = max(N₁₊(•b) − d, 0) / N₁₊(••) + d·|{b : N₁₊(•b) > 0}| / N₁₊(••) · 1/V,

    with N₁₊(a•) the number of distinct tokens seen after a, N₁₊(•b) the number of distinct
    tokens seen before b, and N₁₊(••) the number of distinct pairs. The discount d taken from
    every seen pair is handed to the lower order, which is not b's frequency but how many
    contexts b follows ("continuation"): a token frequent in one fixed context alone earns
    little there. p_cont itself is discounted towards the uniform 1/V, so no token has
    probability 0; a context never seen (c(a) = 0) gives p_cont. Rows sum to 1 for 0 < d ≤ 1.

    Shapes: ids (L,) → P (V, V) float64.
    """
    _check_positive("kneser_ney_bigram", "the discount d", d, upper=1.0)
    c = bigram_counts(ids, vocab_size).astype(np.float64)  # (V, V)
    seen = (c > 0).astype(np.float64)  # (V, V)
    n_pairs = max(seen.sum(), 1.0)  # N₁₊(••)
    before = seen.sum(axis=0)  # N₁₊(•b), (V,)
    p_cont = np.maximum(before - d, 0) / n_pairs + d * (before > 0).sum() / n_pairs / vocab_size  # (V,)
    if not seen.any():  # fewer than two ids: nothing to discount, the uniform
        p_cont = np.full(vocab_size, 1.0 / vocab_size)
    c_a = c.sum(axis=1, keepdims=True)  # c(a), (V, 1)
    safe = np.maximum(c_a, 1.0)
    lam = np.where(c_a > 0, d * seen.sum(axis=1, keepdims=True) / safe, 1.0)  # λ(a), (V, 1)
    return np.maximum(c - d, 0) / safe + lam * p_cont[None, :]  # (V, V)


def ngram_cross_entropy(table: Any, context: Any, targets: Any) -> float:
    """H = −mean_t ln P[a_t, b_t] in nats, for contexts a and the targets b that follow them.

    For a stream: ``ngram_cross_entropy(P, ids[:-1], ids[1:])``; for next-token windows
    (x, y): ``ngram_cross_entropy(P, x, y)``, the pairs a neural model is scored on.

    Shapes: table (V, V); context and targets of one shape (...), ids in 0..V−1 → a float.
    """
    table, context, targets = np.asarray(table), np.asarray(context), np.asarray(targets)
    if table.ndim != 2 or table.shape[0] != table.shape[1]:
        raise ValueError(f"ngram_cross_entropy: the table must be (V, V), got shape {table.shape}")
    if context.shape != targets.shape or context.size == 0:
        raise ValueError(f"ngram_cross_entropy: context and targets must have one non-empty shape, got "
                         f"{context.shape} and {targets.shape}")
    v = table.shape[0]
    for name, ids in (("context", context), ("targets", targets)):
        if not np.issubdtype(ids.dtype, np.integer) or ids.min() < 0 or ids.max() >= v:
            raise ValueError(f"ngram_cross_entropy: {name} must be integer ids in 0..{v - 1}")
    return float(-np.mean(np.log(table[context, targets])))


def ngram_bits_per_char(table: Any, context: Any, targets: Any) -> float:
    """H / ln 2: ``ngram_cross_entropy`` in bits per character (per token)."""
    return ngram_cross_entropy(table, context, targets) / math.log(2)


def fit_baselines(ids: Any, vocab_size: int, k: float = 1.0, d: float = 0.75) -> dict[str, np.ndarray]:
    """{'unigram': add-k unigram, 'add_k_bigram': add-k bigram, 'kneser_ney_bigram': KN bigram},
    all fitted on the stream ``ids``; k and d as in those functions.

    Shapes: ids (L,) → tables (V, V).
    """
    return {"unigram": unigram(ids, vocab_size, k), "add_k_bigram": add_k_bigram(ids, vocab_size, k),
            "kneser_ney_bigram": kneser_ney_bigram(ids, vocab_size, d)}
