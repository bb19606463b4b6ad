"""Scaled dot-product attention (the course's attention chapter), its masks, and a dispatch to
the memory-efficient and library implementations.

    r_ij = ⟨q_i, k_j⟩ / √d_k,    p_i = softmax(r_i),    c_i = Σ_j p_ij v_j
    Attention(Q, K, V) = softmax(QKᵀ/√d_k + M) V

Q holds the queries (n_q × d_k), K the keys (n_k × d_k), V the values (n_k × d_v). The √d_k
keeps the dot products of unit-variance vectors at unit variance: without it they grow like
√d_k, the softmax saturates and its gradients vanish. A mask M is 0 where a query may attend
and −∞ where it may not, so masked weights are exactly 0 after the softmax; in jdl masks are
booleans, True = attend (as in flax and ``jax.nn``; PyTorch's boolean ``attn_mask`` means the
opposite).

``dot_product_attention`` is the plain definition, written to be read. ``attend`` runs the
same function through one of three implementations (``impl=``): "plain" (this file),
"blockwise" (``jdl.kernels.attention``: the online-softmax recurrence, O(n·block) memory) and
"jax" (``jax.nn.dot_product_attention``, the fast fused path where the backend has one).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

IMPLS = ("plain", "blockwise", "jax", "native")


def causal_mask(n_q: int, n_k: int) -> jax.Array:
    """The causal (look-ahead) mask: query i may attend to key j iff j ≤ i + n_k − n_q.

    With n_q = n_k this is the lower triangle, token t attends to tokens ≤ t. It is aligned to
    the bottom right, so that the last n_q of n_k positions (new queries against a KV cache
    that holds n_k − n_q earlier keys) see every cached key and none after their own.

    Shapes: → (n_q, n_k) bool, True = attend.

    >>> causal_mask(2, 3).astype(int).tolist()
    [[1, 1, 0], [1, 1, 1]]
    """
    i = jnp.arange(n_q)[:, None]  # (n_q, 1)
    j = jnp.arange(n_k)[None, :]  # (1, n_k)
    return j <= i + (n_k - n_q)  # (n_q, n_k)


def padding_mask(lengths: Any, n_k: int) -> jax.Array:
    """The padding mask of a batch of sequences padded to n_k: key j of example b is attended
    iff j < lengths[b]; every query of the example sees the same keys.

    Shapes: lengths (B,) integers → (B, 1, n_k) bool, which broadcasts against scores
    (B, n_q, n_k) (``MultiHeadAttention`` adds the head axis).
    """
    lengths = jnp.asarray(lengths)
    if lengths.ndim != 1:
        raise ValueError(f"padding_mask: lengths must have shape (B,), got {lengths.shape}")
    return (jnp.arange(n_k)[None, :] < lengths[:, None])[:, None, :]  # (B, 1, n_k)


def check_qkv(name: str, q: Any, k: Any, v: Any) -> None:
    """Raise ``ValueError`` unless q (…, n_q, d_k), k (…, n_k, d_k), v (…, n_k, d_v) agree."""
    for sym, x in (("q", q), ("k", k), ("v", v)):
        if x.ndim < 2:
            raise ValueError(f"{name}: {sym} must have shape (..., n, d), got {tuple(x.shape)}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"{name}: q and k must share d_k, got q {tuple(q.shape)} with "
                         f"d_k={q.shape[-1]} and k {tuple(k.shape)} with d_k={k.shape[-1]}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"{name}: k and v must have the same number of keys n_k, got k "
                         f"{tuple(k.shape)} and v {tuple(v.shape)}")
    if q.shape[:-2] != k.shape[:-2] or k.shape[:-2] != v.shape[:-2]:
        raise ValueError(f"{name}: q, k, v must share their leading (batch, head) axes, got "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")


def broadcast_mask(name: str, what: str, m: Any, scores_shape: tuple) -> jax.Array:
    """``m`` reshaped to the rank of the scores (…, n_q, n_k) by leading 1s, after checking that
    each of its axes is 1 or the scores' size (a mask or a bias); the values are not copied."""
    m = jnp.asarray(m)
    ok = m.ndim <= len(scores_shape) and all(
        a in (1, b) for a, b in zip(m.shape[::-1], scores_shape[::-1]))
    if not ok:
        raise ValueError(f"{name}: {what} of shape {tuple(m.shape)} does not broadcast to the "
                         f"attention scores (..., n_q, n_k) = {tuple(scores_shape)}")
    return m.reshape((1,) * (len(scores_shape) - m.ndim) + m.shape)


def masked_softmax(scores: jax.Array, mask: Any = None) -> jax.Array:
    """softmax over the last axis with masked entries set to −∞ first:

        p_ij = exp(s_ij − m_i) / Σ_{j': mask_ij'} exp(s_ij' − m_i) if mask_ij, else exactly 0,

    m_i the row's largest unmasked score. A row with no unmasked entry gives zeros, not the NaN
    of 0/0 (and no gradient).

    Shapes: scores (…, n) and a bool mask broadcastable to it → (…, n).
    """
    if mask is None:
        mask = jnp.ones((), bool)
    mask = broadcast_mask("masked_softmax", "mask", mask, scores.shape)
    s = jnp.where(mask, scores, -jnp.inf)
    m = jax.lax.stop_gradient(jnp.max(s, axis=-1, keepdims=True))  # (…, 1), −∞ on empty rows
    e = jnp.exp(s - jnp.where(jnp.isfinite(m), m, 0.0))  # 0 where masked
    total = jnp.sum(e, axis=-1, keepdims=True)  # (…, 1)
    return e / jnp.where(total > 0, total, 1.0)


def attention_scores(q: jax.Array, k: jax.Array, bias: Any = None) -> jax.Array:
    """r = QKᵀ/√d_k (+ bias): the logits of the attention weights.

    Shapes: q (…, n_q, d_k), k (…, n_k, d_k) → (…, n_q, n_k).
    """
    check_qkv("attention_scores", q, k, k)
    r = jnp.einsum("...qd,...kd->...qk", q, k) / math.sqrt(q.shape[-1])  # (…, n_q, n_k)
    if bias is not None:
        r = r + broadcast_mask("attention", "bias", bias, r.shape)
    return r


def attention_weights(q: jax.Array, k: jax.Array, mask: Any = None, bias: Any = None) -> jax.Array:
    """P = softmax(QKᵀ/√d_k + bias + M), M = 0 where ``mask`` is True and −∞ where False; each
    row sums to 1 over the keys it may see (to 0 if it may see none). For plotting.

    Shapes: q (…, n_q, d_k), k (…, n_k, d_k), mask/bias broadcastable to (…, n_q, n_k)
    → (…, n_q, n_k).
    """
    return masked_softmax(attention_scores(q, k, bias), mask)


def dot_product_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: Any = None,
                          bias: Any = None) -> jax.Array:
    """Attention(Q, K, V) = softmax(QKᵀ/√d_k + bias + M) V: each output row is the average of
    the value rows, weighted by how well its query matches each key.

    Shapes: q (…, n_q, d_k), k (…, n_k, d_k), v (…, n_k, d_v), mask (bool, True = attend) and
    bias broadcastable to (…, n_q, n_k) → (…, n_q, d_v). With the course's shapes, Q 2×64
    against K = V 4×64 gives 2×64.

    Args:
      q, k, v: queries, keys and values; any leading axes (batch, heads) are shared.
      mask: optional boolean mask, e.g. ``causal_mask(n_q, n_k)`` or ``padding_mask``.
      bias: optional additive bias on the scores (relative positions, ALiBi).

    Returns: the attended values; a query that may attend to no key gets zeros.
    """
    check_qkv("dot_product_attention", q, k, v)
    p = attention_weights(q, k, mask, bias)  # (…, n_q, n_k)
    return jnp.einsum("...qk,...kd->...qd", p, v)  # (…, n_q, d_v)


def _jax_attention(q, k, v, mask, bias):
    """``jax.nn.dot_product_attention`` on (…, n, d) arrays, its layout being (B, T, N, H):
    the leading axes are flattened into B with one head; d_k ≠ d_v is padded with zeros (which
    leaves ⟨q, k⟩ and the scale 1/√d_k unchanged); rows with no key are zeroed."""
    lead, (n_q, n_k), (d_k, d_v) = q.shape[:-2], (q.shape[-2], k.shape[-2]), (q.shape[-1], v.shape[-1])
    shape, d = (*lead, n_q, n_k), max(d_k, d_v)

    def to_btnh(x):  # (…, n, d_x) → (B', n, 1, d)
        x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, d - x.shape[-1])])
        return x.reshape(math.prod(lead), x.shape[-2], 1, d)

    to_bnts = lambda m: jnp.broadcast_to(broadcast_mask("attention", "mask or bias", m, shape),
                                         shape).reshape(math.prod(lead), 1, n_q, n_k)
    o = jax.nn.dot_product_attention(
        to_btnh(q), to_btnh(k), to_btnh(v), scale=1.0 / math.sqrt(d_k),
        bias=None if bias is None else to_bnts(bias).astype(q.dtype),
        mask=None if mask is None else to_bnts(mask))  # (B', n_q, 1, d)
    o = o.reshape(*lead, n_q, d)[..., :d_v]  # (…, n_q, d_v)
    if mask is not None:
        any_key = jnp.any(broadcast_mask("attention", "mask", mask, shape), axis=-1, keepdims=True)
        o = jnp.where(any_key, o, 0.0)
    return o


def attend(q: jax.Array, k: jax.Array, v: jax.Array, mask: Any = None, bias: Any = None,
           *, causal: bool = False, impl: str = "plain", block_size: int = 128) -> jax.Array:
    """softmax(QKᵀ/√d_k + bias + M) V, computed by the implementation ``impl`` names:

    - "plain": ``dot_product_attention``, which builds the (…, n_q, n_k) weights;
    - "blockwise": ``jdl.kernels.blockwise_attention``, the online softmax over key blocks of
      ``block_size``, memory O(n·block) in forward and backward;
    - "jax": ``jax.nn.dot_product_attention`` (fused kernels where the backend has them);
    - "native": ``jdl.kernels.attention_native``, forward and backward in C++ for x86-64 CPUs
      with AVX2 (float32, d_v = d_k, no ``mask`` or ``bias``: ``causal`` only; built on first use).

    All three give the same values and gradients (to rounding), including zeros for a query
    that may attend to no key. ``causal=True`` ands ``mask`` with ``causal_mask(n_q, n_k)``
    (built block by block, never as an n_q × n_k array, by "blockwise").

    Shapes: as ``dot_product_attention``: q (…, n_q, d_k), k (…, n_k, d_k), v (…, n_k, d_v)
    → (…, n_q, d_v).
    """
    check_qkv("attend", q, k, v)
    if impl not in IMPLS:
        raise ValueError(f"attend: impl must be one of {IMPLS}, got {impl!r}")
    if impl == "native":
        if mask is not None or bias is not None:
            raise ValueError("attend(impl='native'): takes causal=True or nothing, not a mask or a bias; "
                             "use impl='plain' or 'blockwise' for those")
        from jdl.kernels.attention_native import attention  # jdl.kernels builds on this file
        return attention(q, k, v, causal=causal)
    if impl == "blockwise":
        from jdl.kernels.attention import blockwise_attention  # jdl.kernels builds on this file
        return blockwise_attention(q, k, v, mask, bias, causal=causal, block_size=block_size)
    if causal:
        c = causal_mask(q.shape[-2], k.shape[-2])
        mask = c if mask is None else broadcast_mask(
            "attend", "mask", mask, (*q.shape[:-1], k.shape[-2])) & c.reshape(
                (1,) * (q.ndim - 2) + c.shape)
    if impl == "plain":
        return dot_product_attention(q, k, v, mask, bias)
    return _jax_attention(q, k, v, mask, bias)
