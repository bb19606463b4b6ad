"""Multi-head attention: h attentions in parallel on learned projections, concatenated and
projected back (the course's attention chapter; Vaswani et al., 2017).

    head_i = Attention(X_q W_q^i, X_kv W_k^i, X_kv W_v^i)
    MHA(X_q, X_kv) = [head_1; …; head_h] W^O

Self-attention takes X_q = X_kv = X; cross-attention takes the queries from the decoder and
keys and values from the encoder's output (``context=``). The h projections of size d_k are
stored side by side as one matrix: w_q is (d_model, h·d_k), and W^O is (h·d_v, d_model), so a
layer with d_model = 512, h = 8 and d_k = d_v = 64 concatenates 8 heads of n × 64 into
n × 512 and projects them back to n × 512.

The pure functions ``project_qkv``, ``project_out`` and ``multi_head_attention`` are what the
module runs; a Transformer block or a GPT decode step with a KV cache can call them directly.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jdl import init as initializers
from jdl.core import Module, Params, PRNGKey, State, check_float, check_key, leaf, shape_struct
from jdl.nn.attention import IMPLS, attend, attention_weights, broadcast_mask, causal_mask
from jdl.nn.dropout import dropout as dropout_fn
from jdl.nn.linear import dense
from jdl.nn.rope import rope


def split_heads(x: jax.Array, num_heads: int) -> jax.Array:
    """Cut the features into h heads and move the head axis before time.

    Shapes: x (B, T, h·d) → (B, h, T, d).
    """
    B, T, C = x.shape
    if C % num_heads:
        raise ValueError(f"split_heads: {C} features do not split into {num_heads} heads")
    x = x.reshape(B, T, num_heads, C // num_heads)  # (B, T, h, d)
    return x.transpose(0, 2, 1, 3)  # (B, h, T, d)


def merge_heads(x: jax.Array) -> jax.Array:
    """Concatenate the heads along the features: [head_1; …; head_h].

    Shapes: x (B, h, T, d) → (B, T, h·d).
    """
    B, h, T, d = x.shape
    x = x.transpose(0, 2, 1, 3)  # (B, T, h, d)
    return x.reshape(B, T, h * d)  # (B, T, h·d)


def project_qkv(params: Params, x: jax.Array, context: jax.Array | None = None,
                num_heads: int = 1, fused: bool = False) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Q = X_q W_q + b_q, K = X_kv W_k + b_k, V = X_kv W_v + b_v, each split into heads;
    X_kv = ``context`` for cross-attention, else X_q = ``x`` (self-attention). The matmuls
    run on (B·T, C) operands (``dense``), which XLA:CPU differentiates fastest.

    ``fused=True`` (self-attention only; ignored with a ``context``) computes the same three
    products as one matmul, [Q K V] = X [W_q W_k W_v] + [b_q b_k b_v], on the weights
    concatenated inside the step (GPT-2's ``c_attn``): one wider matmul forward and backward
    instead of three, same params layout.

    Shapes: x (B, T_q, d_model), context (B, T_k, d_model) → q (B, h, T_q, d_k),
    k (B, h, T_k, d_k), v (B, h, T_k, d_v).
    """
    if fused and context is None:
        cat = lambda name: jnp.concatenate([params[p][name] for p in "qkv"], axis=-1)
        joint = {"w": cat("w")} | ({"b": cat("b")} if "b" in params["q"] else {})  # (C, 2·h·d_k + h·d_v)
        d_qk = params["q"]["w"].shape[1]
        q, k, v = jnp.split(dense(joint, x), [d_qk, 2 * d_qk], axis=-1)  # (B, T, h·d) each
        return split_heads(q, num_heads), split_heads(k, num_heads), split_heads(v, num_heads)
    kv = x if context is None else context
    q = split_heads(dense(params["q"], x), num_heads)  # (B, h, T_q, d_k)
    k = split_heads(dense(params["k"], kv), num_heads)  # (B, h, T_k, d_k)
    v = split_heads(dense(params["v"], kv), num_heads)  # (B, h, T_k, d_v)
    return q, k, v


def project_out(params: Params, z: jax.Array) -> jax.Array:
    """Y = [head_1; …; head_h] W^O + b_O.

    Shapes: z (B, h, T, d_v) → (B, T, h·d_v) → y (B, T, d_model).
    """
    return dense(params["o"], merge_heads(z))  # (B, T, d_model)


def full_mask(mask: Any, causal: bool, scores_shape: tuple) -> jax.Array | None:
    """The mask of multi-head attention at rank 4, broadcastable to the scores (B, h, n_q, n_k):
    ``mask`` given as (n_q, n_k), (B, n_q, n_k) (``padding_mask``'s (B, 1, n_k) too) or
    (B, h, n_q, n_k), and'ed with ``causal_mask(n_q, n_k)`` when ``causal`` (None: no mask)."""
    if mask is not None:
        mask = jnp.asarray(mask)
        if mask.dtype != bool:
            raise TypeError(f"MultiHeadAttention: mask must be boolean (True = attend), got "
                            f"dtype {mask.dtype}")
        if mask.ndim not in (2, 3, 4):
            raise ValueError(f"MultiHeadAttention: mask must have shape (n_q, n_k), "
                             f"(B, n_q, n_k) or (B, h, n_q, n_k), got {tuple(mask.shape)}")
        if mask.ndim == 3:
            mask = mask[:, None]  # (B, 1, n_q, n_k): the same for every head
        mask = broadcast_mask("MultiHeadAttention", "mask", mask, scores_shape)
    if causal:
        c = causal_mask(*scores_shape[-2:])[None, None]  # (1, 1, n_q, n_k)
        mask = c if mask is None else mask & c
    return mask


def multi_head_attention(params: Params, x: jax.Array, num_heads: int, *,
                         context: jax.Array | None = None, mask: Any = None,
                         causal: bool = False, impl: str = "plain",
                         dropout: float = 0.0, key: PRNGKey | None = None, fused_qkv: bool = False,
                         rotary_base: float | None = None):
    """MHA(X_q, X_kv) = [head_1; …; head_h] W^O, head_i = softmax(Q_i K_iᵀ/√d_k + M) V_i.

    ``rotary_base`` (self-attention): rotate every head's queries and keys by their positions
    0..T−1 first, Q_i ← rope(Q_i), K_i ← rope(K_i) (``jdl.nn.rope`` with that base), so the
    scores depend on positions only through their difference (RoPE).

    Dropout with probability ``dropout`` (and ``key``) zeroes attention weights, as in the
    original Transformer, flax and PyTorch; it needs impl="plain". ``fused_qkv`` projects Q, K,
    V of self-attention as one matmul (``project_qkv(fused=True)``).

    Shapes: x (B, T_q, d_model), context (B, T_k, d_model), mask as ``full_mask`` takes it
    → y (B, T_q, d_model), and the weights (B, h, T_q, T_k) for impl="plain" (None otherwise).
    """
    if rotary_base is not None and context is not None:
        raise ValueError("MultiHeadAttention: rotary_base rotates queries and keys by their positions "
                         "in one sequence (self-attention); got a context (cross-attention)")
    q, k, v = project_qkv(params, x, context, num_heads, fused_qkv)  # (B, h, T, d)
    if rotary_base is not None:
        q, k = rope(q, None, rotary_base), rope(k, None, rotary_base)  # (B, h, T, d_k)
    if impl != "plain":
        if dropout and key is not None:
            raise ValueError(f"MultiHeadAttention: dropout on the attention weights needs "
                             f"impl='plain', got impl={impl!r}")
        mask = full_mask(mask, False, (*q.shape[:-1], k.shape[-2]))
        return project_out(params, attend(q, k, v, mask, causal=causal, impl=impl)), None
    mask = full_mask(mask, causal, (*q.shape[:-1], k.shape[-2]))
    p = attention_weights(q, k, mask)  # (B, h, T_q, T_k)
    p_used = dropout_fn(key, p, dropout) if (dropout and key is not None) else p
    z = jnp.einsum("bhqk,bhkd->bhqd", p_used, v)  # (B, h, T_q, d_v)
    return project_out(params, z), p


def _check_input(name: str, what: str, x: Any, d_model: int) -> None:
    if x.ndim not in (2, 3) or x.shape[-1] != d_model:
        raise ValueError(f"{name}: {what} must have shape (B, T, d_model) or (T, d_model) with "
                         f"d_model={d_model}, got {tuple(x.shape)}")


def _head_sizes(num_heads, d_model, d_k, d_v, dropout, impl) -> tuple[int, int]:
    """Check MultiHeadAttention's arguments; return (d_k, d_v) with their defaults filled in."""
    name = "MultiHeadAttention"
    for arg, value in (("num_heads", num_heads), ("d_model", d_model)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: {arg} must be a positive int, got {value!r}")
    if d_k is None and d_model % num_heads:
        raise ValueError(f"{name}: d_model={d_model} is not divisible by num_heads={num_heads}; "
                         f"pass d_k explicitly, e.g. MultiHeadAttention({num_heads}, {d_model}, "
                         f"d_k={max(1, d_model // num_heads)})")
    if impl not in IMPLS:
        raise ValueError(f"{name}: impl must be one of {IMPLS}, got {impl!r}")
    if dropout and impl != "plain":
        raise ValueError(f"{name}: dropout on the attention weights needs impl='plain', "
                         f"got impl={impl!r}")
    d_k = d_model // num_heads if d_k is None else d_k
    return d_k, d_k if d_v is None else d_v


def init_params(key: PRNGKey, num_heads: int, d_model: int, d_k: int, d_v: int,
                use_bias: bool = True, dtype: Any = jnp.float32) -> Params:
    """MultiHeadAttention's params: W_q, W_k (d_model, h·d_k), W_v (d_model, h·d_v) and W^O
    (h·d_v, d_model), LeCun normal (flax's default), each with a zero bias when ``use_bias``."""
    params = {}
    for i, (p, d_in, d_out) in enumerate((("q", d_model, num_heads * d_k),
                                          ("k", d_model, num_heads * d_k),
                                          ("v", d_model, num_heads * d_v),
                                          ("o", num_heads * d_v, d_model))):
        params[p] = {"w": initializers.lecun_normal(jax.random.fold_in(key, i), (d_in, d_out), dtype)}
        if use_bias:
            params[p]["b"] = jnp.zeros((d_out,), dtype)
    return params


def MultiHeadAttention(num_heads: int, d_model: int, *, d_k: int | None = None,
                       d_v: int | None = None, use_bias: bool = True, dropout: float = 0.0,
                       impl: str = "plain") -> Module:
    """Multi-head attention: MHA(X_q, X_kv) = [head_1; …; head_h] W^O + b_O with
    head_i = softmax((X_q W_q^i)(X_kv W_k^i)ᵀ/√d_k + M)(X_kv W_v^i), biases on every
    projection when ``use_bias``. Its parameter count is 2·d_model·h·d_k + 2·d_model·h·d_v
    (+ 2·h·d_k + h·d_v + d_model biases).

    ``apply(params, state, x, *, context=None, mask=None, causal=False, return_weights=False,
    key=None, train=False)``: self-attention on ``x``, or cross-attention with keys and values
    from ``context`` (an encoder's output); ``mask`` is boolean (True = attend) of shape
    (T_q, T_k), (B, T_q, T_k) or (B, h, T_q, T_k), or ``padding_mask``'s (B, 1, T_k);
    ``causal=True`` ands it with ``causal_mask``; ``return_weights=True`` returns
    ``(y, weights)`` with the weights (B, h, T_q, T_k) before dropout, for plotting (impl="plain").
    Dropout zeroes attention weights when ``train=True`` (a key is then required).

    Shapes: x (B, T_q, d_model) or (T_q, d_model), context (B, T_k, d_model) → y like x.
    Params: ``q``, ``k``: {w (d_model, h·d_k), b (h·d_k,)}; ``v``: {w (d_model, h·d_v),
    b (h·d_v,)}; ``o``: {w (h·d_v, d_model), b (d_model,)} — W^O; LeCun-normal weights and zero
    biases, as flax's ``MultiHeadDotProductAttention``.

    Args:
      num_heads: h.
      d_model: the width of x, context and y.
      d_k: the size of each query/key head (default d_model / h); d_v: of each value head
        (default d_k).
      use_bias: biases on the four projections.
      dropout: the drop probability of the attention weights in training.
      impl: "plain", "blockwise" or "jax", the implementation of the attention (see
        ``jdl.nn.attend``); dropout and returned weights need "plain".
    """
    name = "MultiHeadAttention"
    d_k, d_v = _head_sizes(num_heads, d_model, d_k, d_v, dropout, impl)

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        x = shape_struct(x)
        check_float(name, x)
        _check_input(name, "x", x, d_model)
        return init_params(key, num_heads, d_model, d_k, d_v, use_bias, x.dtype), {}

    def apply(params: Params, state: State, x: Any, *, context: Any = None, mask: Any = None,
              causal: bool = False, return_weights: bool = False, key: PRNGKey | None = None,
              train: bool = False):
        _check_input(name, "x", x, d_model)
        if context is not None:
            _check_input(name, "context", context, d_model)
            if context.ndim != x.ndim or context.shape[:-2] != x.shape[:-2]:
                raise ValueError(f"{name}: context {tuple(context.shape)} and x "
                                 f"{tuple(x.shape)} must have the same batch axes")
        if return_weights and impl != "plain":
            raise ValueError(f"{name}: return_weights=True needs impl='plain', got impl={impl!r}")
        p_drop = dropout if train else 0.0
        if p_drop:
            check_key(name, key, train)
        unbatched = x.ndim == 2
        add_batch = (lambda a: a[None]) if unbatched else (lambda a: a)  # (T, C) → (1, T, C)
        y, p = multi_head_attention(
            params, add_batch(x), num_heads, context=None if context is None else add_batch(context),
            mask=mask, causal=causal, impl=impl, dropout=p_drop, key=key if p_drop else None)
        if unbatched:
            y, p = y[0], None if p is None else p[0]  # (T_q, d_model), (h, T_q, T_k)
        return ((y, p) if return_weights else y), state

    return leaf(init, apply, "multihead_attention",
                accepts={"context", "mask", "causal", "return_weights"})
