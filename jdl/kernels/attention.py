"""Memory-efficient attention: the online-softmax recurrence of FlashAttention (Dao et al., 2022;
Rabe & Staats, 2021) written in JAX, with a backward pass that recomputes each block.

The plain ``softmax(QKᵀ/√d_k + M) V`` builds the n_q × n_k weights, and its gradient keeps them
for the backward pass: memory O(n²). Here the keys and values are cut into blocks K_j, V_j of
``block_size`` rows and visited one at a time (``lax.scan``), keeping per query row a running
maximum m, a running denominator ℓ and a running output a:

    S_j   = Q K_jᵀ/√d_k + bias_j   (−∞ where masked)          (n_q × block)
    m'    = max(m, rowmax S_j)
    ℓ'    = e^{m − m'} ℓ + rowsum e^{S_j − m'}
    a'    = e^{m − m'} a + e^{S_j − m'} V_j
    O     = a / ℓ,   L = m + log ℓ (the log-sum-exp of each row, saved for the backward)

The factor e^{m − m'} rescales what was summed under the old maximum, so the result equals the
plain softmax exactly (up to rounding). The backward pass (a ``jax.custom_vjp``) saves only
Q, K, V, O and L, and recomputes P_j = e^{S_j − L} block by block:

    dV_j = P_jᵀ dO,   dP_j = dO V_jᵀ,   dS_j = P_j ⊙ (dP_j − D),   D = rowsum(dO ⊙ O)
    dQ  += dS_j K_j/√d_k,   dK_j = dS_jᵀ Q/√d_k,   dbias_j = dS_j

so forward and backward hold O(n·block) floats instead of O(n²). A row with no allowed key
gives zeros (ℓ = 0), as the plain attention does.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp

from jdl.nn.attention import broadcast_mask, check_qkv


def _blocks(x: jax.Array | None, n_blocks: int, block: int, fill: Any) -> jax.Array | None:
    """(…, n, block·n_blocks − pad) → padded with ``fill`` → (n_blocks, …, n, block)."""
    if x is None:
        return None
    pad = n_blocks * block - x.shape[-1]
    x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, pad)], constant_values=fill)
    x = x.reshape(*x.shape[:-1], n_blocks, block)  # (…, n, n_blocks, block)
    return jnp.moveaxis(x, -2, 0)  # (n_blocks, …, n, block)


def _block_scores(q, k_j, mask_j, bias_j, j, n_k, causal):
    """S_j = Q K_jᵀ/√d_k + bias_j and where it is allowed (valid key, causal, mask).

    Shapes: q (…, n_q, d_k), k_j (…, block, d_k) → both (…, n_q, block)."""
    n_q, block = q.shape[-2], k_j.shape[-2]
    s = jnp.einsum("...qd,...kd->...qk", q, k_j) / math.sqrt(q.shape[-1])  # (…, n_q, block)
    if bias_j is not None:
        s = s + bias_j
    key_idx = j * block + jnp.arange(block)[None, :]  # (1, block)
    allowed = key_idx < n_k  # the padding after the last key
    if causal:
        allowed = allowed & (key_idx <= jnp.arange(n_q)[:, None] + (n_k - n_q))  # (n_q, block)
    allowed = allowed.reshape((1,) * (s.ndim - 2) + allowed.shape)
    if mask_j is not None:
        allowed = allowed & mask_j
    return s, allowed


def _forward(q, k_b, v_b, mask_b, bias_b, n_k, causal):
    """The online softmax over key blocks; returns O (…, n_q, d_v) and L (…, n_q, 1)."""
    lead_q = q.shape[:-1]
    m0 = jnp.full((*lead_q, 1), -jnp.inf, q.dtype)  # running max
    l0 = jnp.zeros((*lead_q, 1), q.dtype)  # running denominator
    a0 = jnp.zeros((*lead_q, v_b.shape[-1]), q.dtype)  # running numerator Σ e^{s − m} v

    def step(carry, xs):
        m, l, a = carry
        k_j, v_j, mask_j, bias_j, j = xs
        s, allowed = _block_scores(q, k_j, mask_j, bias_j, j, n_k, causal)
        s = jnp.where(allowed, s, -jnp.inf)
        m_new = jnp.maximum(m, jnp.max(s, axis=-1, keepdims=True))  # (…, n_q, 1)
        m_safe = jnp.where(jnp.isfinite(m_new), m_new, 0.0)  # −∞ while a row has no key yet
        p = jnp.exp(s - m_safe)  # (…, n_q, block), 0 where masked
        alpha = jnp.exp(m - m_safe)  # rescales the old sums; 0 when m = −∞
        l = alpha * l + jnp.sum(p, axis=-1, keepdims=True)
        a = alpha * a + jnp.einsum("...qk,...kd->...qd", p, v_j)  # (…, n_q, d_v)
        return (m_new, l, a), None

    js = jnp.arange(k_b.shape[0])
    (m, l, a), _ = jax.lax.scan(step, (m0, l0, a0), (k_b, v_b, mask_b, bias_b, js))
    o = a / jnp.where(l > 0, l, 1.0)  # a row with no key: a = 0, so o = 0
    lse = jnp.where(l > 0, m + jnp.log(jnp.where(l > 0, l, 1.0)), 0.0)  # (…, n_q, 1)
    return o, lse


def _sum_to(x: jax.Array, shape: tuple) -> jax.Array:
    """Sum ``x`` over the axes where ``shape`` (same rank) has 1: the transpose of broadcasting."""
    axes = tuple(i for i, (a, b) in enumerate(zip(shape, x.shape)) if a == 1 and b != 1)
    return jnp.sum(x, axis=axes, keepdims=True)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6))
def _flash(q, k_b, v_b, mask_b, bias_b, n_k, causal):
    return _forward(q, k_b, v_b, mask_b, bias_b, n_k, causal)[0]


def _flash_fwd(q, k_b, v_b, mask_b, bias_b, n_k, causal):
    o, lse = _forward(q, k_b, v_b, mask_b, bias_b, n_k, causal)
    return o, (q, k_b, v_b, mask_b, bias_b, o, lse)


def _flash_bwd(n_k, causal, res, do):
    q, k_b, v_b, mask_b, bias_b, o, lse = res
    scale = 1.0 / math.sqrt(q.shape[-1])
    d = jnp.sum(do * o, axis=-1, keepdims=True)  # D = rowsum(dO ⊙ O), (…, n_q, 1)

    def step(dq, xs):
        k_j, v_j, mask_j, bias_j, j = xs
        s, allowed = _block_scores(q, k_j, mask_j, bias_j, j, n_k, causal)
        p = jnp.where(allowed, jnp.exp(s - lse), 0.0)  # P_j recomputed, (…, n_q, block)
        dv_j = jnp.einsum("...qk,...qd->...kd", p, do)  # (…, block, d_v)
        dp = jnp.einsum("...qd,...kd->...qk", do, v_j)  # (…, n_q, block)
        ds = p * (dp - d)  # (…, n_q, block)
        dq = dq + jnp.einsum("...qk,...kd->...qd", ds, k_j) * scale  # (…, n_q, d_k)
        dk_j = jnp.einsum("...qk,...qd->...kd", ds, q) * scale  # (…, block, d_k)
        dbias_j = None if bias_j is None else _sum_to(ds, bias_j.shape)
        return dq, (dk_j, dv_j, dbias_j)

    js = jnp.arange(k_b.shape[0])
    dq, (dk_b, dv_b, dbias_b) = jax.lax.scan(step, jnp.zeros_like(q), (k_b, v_b, mask_b, bias_b, js))
    return dq, dk_b, dv_b, None, dbias_b


_flash.defvjp(_flash_fwd, _flash_bwd)


def blockwise_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: Any = None,
                        bias: Any = None, *, causal: bool = False,
                        block_size: int = 128) -> jax.Array:
    """softmax(QKᵀ/√d_k + bias + M) V by the online softmax over key blocks (see the module
    docstring), equal to ``jdl.nn.dot_product_attention`` in value and gradient, with
    O(n_q·block) temporary memory in the forward and backward passes instead of O(n_q·n_k).

    Shapes: q (…, n_q, d_k), k (…, n_k, d_k), v (…, n_k, d_v); mask (bool, True = attend)
    and bias broadcastable to (…, n_q, n_k) → (…, n_q, d_v).

    Args:
      q, k, v: queries, keys, values.
      mask: optional boolean mask; ``causal=True`` builds the causal mask (bottom-right
        aligned, as ``jdl.nn.causal_mask``) block by block instead of as an n_q × n_k array.
      bias: optional additive bias on the scores; it gets a gradient.
      causal: and the mask with the causal mask.
      block_size: the number of keys per block; n_k need not be a multiple of it.
    """
    name = "blockwise_attention"
    check_qkv(name, q, k, v)
    if not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"{name}: block_size must be a positive int, got {block_size!r}")
    shape = (*q.shape[:-1], k.shape[-2])  # (…, n_q, n_k), never built
    n_k = k.shape[-2]
    block = min(block_size, n_k)
    n_blocks = -(-n_k // block)
    key_axis = lambda m: jnp.broadcast_to(m, (*m.shape[:-1], n_k))  # only the key axis is expanded
    if mask is not None:
        mask = key_axis(broadcast_mask(name, "mask", mask, shape).astype(bool))
    if bias is not None:
        bias = key_axis(broadcast_mask(name, "bias", bias, shape).astype(q.dtype))
    kv_blocks = lambda x: jnp.moveaxis(_blocks(jnp.swapaxes(x, -1, -2), n_blocks, block, 0),
                                       -1, -2)  # (n_blocks, …, block, d)
    return _flash(q, kv_blocks(k), kv_blocks(v), _blocks(mask, n_blocks, block, False),
                  _blocks(bias, n_blocks, block, 0.0), n_k, causal)
