"""Text embeddings for retrieval: hashed character n-gram counts and their TF-IDF weighting,
mean-pooled features of a GPT, and the InfoNCE loss that trains an encoder contrastively.

    TF-IDF      e_{d,g} = (1 + log tf_{d,g}) · idf_g,   idf_g = log((1 + N)/(1 + df_g)) + 1
    GPT         e_d = (1/T_d) Σ_{t<T_d} LN_f(h_N)_t        (the last block's output, mean-pooled)
    InfoNCE     ℓ = −(1/B) Σ_i log softmax_j(q̂_iᵀp̂_j / τ)_i, averaged with the p → q direction

tf_{d,g} counts n-gram g in text d, df_g the texts (of N) that hold g (sklearn's smooth idf
with sublinear tf). N-grams are hashed to ``buckets`` columns by a fixed polynomial of their
code points, so the featurizer needs no vocabulary and gives the same columns on every run.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jdl.core import Params
from jdl.models.gpt import GPTConfig, block_stack, embed_tokens, layer_norm

_MULTIPLIERS = np.array([1, 1_000_003, 999_983, 1_000_033, 998_353], dtype=np.int64)


def char_ngram_counts(texts: Sequence[str], ns: Sequence[int] = (3, 4), buckets: int = 4096) -> np.ndarray:
    """c_{d,b} = the number of character n-grams (n ∈ ``ns``) of text d that hash to bucket b,
    hash(g) = (Σ_j m_j·ord(g_j) + n) mod buckets for fixed multipliers m_j.

    Shapes: D texts → counts (D, buckets) float32.
    """
    if isinstance(texts, str):
        raise TypeError("char_ngram_counts: expected a sequence of texts, got one string; pass [text]")
    if not ns or any(not isinstance(n, int) or not 1 <= n <= len(_MULTIPLIERS) for n in ns):
        raise ValueError(f"char_ngram_counts: ns must be ints in 1..{len(_MULTIPLIERS)}, got {ns!r}")
    out = np.zeros((len(texts), buckets), np.float32)
    for d, text in enumerate(texts):
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32).astype(np.int64)
        for n in ns:
            if len(codes) < n:
                continue
            h = sum(_MULTIPLIERS[j] * codes[j:len(codes) - n + 1 + j] for j in range(n)) + n  # (L − n + 1,)
            out[d] += np.bincount(h % buckets, minlength=buckets)
    return out


def fit_idf(counts: np.ndarray) -> np.ndarray:
    """idf_g = log((1 + N)/(1 + df_g)) + 1 with df_g = #{d : c_{d,g} > 0} over the N rows.

    Shapes: counts (N, G) → idf (G,) float32."""
    counts = np.asarray(counts)
    df = (counts > 0).sum(axis=0)  # (G,)
    return (np.log((1 + len(counts)) / (1 + df)) + 1).astype(np.float32)


def tfidf(counts: np.ndarray, idf: np.ndarray) -> np.ndarray:
    """e_{d,g} = (1 + log c_{d,g})·idf_g where c_{d,g} > 0, else 0 (sublinear tf), unnormalized
    (cosine similarity normalizes).

    Shapes: counts (D, G), idf (G,) → (D, G) float32."""
    counts = np.asarray(counts, np.float32)
    tf = np.where(counts > 0, 1 + np.log(np.maximum(counts, 1)), 0)  # (D, G)
    return (tf * idf[None, :]).astype(np.float32)


def gpt_features(params: Params, config: GPTConfig, ids: jax.Array, lengths: jax.Array) -> jax.Array:
    """Mean-pooled GPT features: e_d = (1/T_d) Σ_{t<T_d} LN_f(h_N)_t, the final LayerNorm of
    the last block's output (what the head reads) averaged over the T_d real tokens of each
    right-padded row (the causal mask keeps the padding from changing the real positions).

    Shapes: ids (B, T) int, lengths (B,) int ≥ 1 → (B, d_model).
    """
    B, T = ids.shape
    h = embed_tokens(params, ids, jnp.arange(T))  # (B, T, C)
    h, _ = block_stack(config).apply(params["blocks"], {}, h)  # (B, T, C)
    h = layer_norm(params["ln_f"], h, config.layer_norm_eps)  # (B, T, C)
    real = (jnp.arange(T)[None, :] < lengths[:, None]).astype(h.dtype)  # (B, T)
    return jnp.einsum("bt,btc->bc", real, h) / jnp.maximum(real.sum(axis=1), 1)[:, None]  # (B, C)


def info_nce(q: jax.Array, p: jax.Array, temperature: float = 0.05) -> jax.Array:
    """The symmetric InfoNCE (CLIP) loss of B matching pairs (q_i, p_i), every other p_j in the
    batch a negative: S = q̂ p̂ᵀ/τ (unit-norm rows), ℓ = ½[CE(S, I) + CE(Sᵀ, I)], CE the mean
    softmax cross-entropy with the diagonal as the labels. Not a case of SimCLR's
    ``jdl.contrastive.nt_xent``, nor it of this: NT-Xent also counts the other views of the same
    side (q_k, k ≠ i) as negatives, 2B − 2 of them to the B − 1 here, so it is the larger.

    Shapes: q (B, D), p (B, D) → scalar.
    """
    if q.ndim != 2 or q.shape != p.shape:
        raise ValueError(f"info_nce: expected q and p of the same shape (B, D), got {tuple(q.shape)} "
                         f"and {tuple(p.shape)}")
    if not temperature > 0:
        raise ValueError(f"info_nce: temperature must be > 0, got {temperature!r}")
    unit = lambda x: x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
    s = unit(q) @ unit(p).T / temperature  # (B, B)
    diag = jnp.arange(q.shape[0])
    ce = lambda z: -jnp.mean(jax.nn.log_softmax(z, axis=-1)[diag, diag])
    return 0.5 * (ce(s) + ce(s.T))
