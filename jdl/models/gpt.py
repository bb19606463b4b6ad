"""GPT: a decoder-only Transformer language model (the course's GPT architectures; Radford et
al., 2018 and 2019), written to be read in one sitting.

    h_0 = W_te[x_t] + W_pe[t]                                  token + learned position
      (positions="rotary": h_0 = W_te[x_t], and each MHA rotates q_t ← R_t q_t, k_s ← R_s k_s
      first, RoPE's ``jdl.nn.rope``, so its scores q_tᵀR_{s−t}k_s see relative positions only)
    h_l = h_{l−1} + MHA(LN_1(h_{l−1}))      (causal)            l = 1..N, Pre-LN blocks
    h_l = h_l + FFN(LN_2(h_l)),  FFN(u) = GELU(u W_1 + b_1) W_2 + b_2
    logits = LN_f(h_N) W_head,   W_head = W_teᵀ when the head is tied

The blocks are GPT-2's: LayerNorm before each sublayer and one final LayerNorm (the course's
Pre-LN sheet), GELU in its tanh approximation, biases on every projection, d_ff = 4·d_model.
Multi-head attention is ``jdl.nn.multihead``'s, with its params layout ``q``, ``k``, ``v``,
``o``, so a KV-cached decode step (``jdl.models.gpt_generate``) runs the same projections.

The N blocks are a Python loop (``stack="loop"``, params ``{'0_block': …, '1_block': …}``,
``jdl.nn.serial``) or one block under ``jax.lax.scan`` with stacked params (``stack="repeat"``,
``jdl.nn.repeat``: each leaf gains a leading axis N, and compile time stays flat in depth).
``stack_blocks``/``unstack_blocks`` convert one layout into the other.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp

from jdl import init as initializers
from jdl.core import Module, Params, PRNGKey, State, check_integer, check_key, fold_in, leaf, shape_struct
from jdl.nn.attention import IMPLS
from jdl.nn.combinators import repeat, serial
from jdl.nn.dropout import dropout as dropout_fn
from jdl.nn.embedding import embed
from jdl.nn.feedforward import ACTIVATIONS, FFN_IMPLS, feed_forward
from jdl.nn.multihead import multi_head_attention
from jdl.nn.norm import moments, normalize

STACKS = ("loop", "repeat")
POSITIONS = ("learned", "rotary")


@dataclasses.dataclass(frozen=True)
class GPTConfig:
    """The shape of a GPT. ``d_ff`` defaults to 4·d_model (GPT-2's).

    Args:
      vocab_size: V, the number of token ids.
      context: the longest sequence (the rows of the learned position table).
      num_layers: N, the number of blocks.
      d_model: the width of the residual stream.
      num_heads: h; d_model must be divisible by h (each head has d_model/h features).
      d_ff: the hidden width of each block's feed-forward network (None: 4·d_model).
      dropout: the drop probability on the embeddings, the attention weights and each
        sublayer's output, in training (GPT-2's embd/attn/resid_pdrop in one number).
      tied_head: logits = h W_teᵀ (GPT-2), or a separate ``head`` matrix (d_model, V).
      stack: "loop" (a Python loop of N blocks) or "repeat" (stacked params under lax.scan).
      layer_norm_eps: ε of every LayerNorm (GPT-2: 1e-5).
      attention: the attention implementation, "plain", "blockwise", "jax" or "native"
        (``jdl.nn.attend``); dropout on the attention weights needs "plain".
      fused_qkv: project Q, K, V as one matmul on the concatenated weights
        (``jdl.nn.project_qkv(fused=True)``; same params, same values).
      positions: "learned" (GPT-2's ``wpe`` table) or "rotary" (RoPE on q, k; base ``rope_base``).
      prev_tokens: n ≥ 0 tables of previous-token embeddings added to the input (``embed_tokens``;
        a token shift: one attention layer can then match x_{s−1} to x_t, an induction head).
      ffn_impl: the feed-forward's matmuls, "xla" (``jdl.nn.dense``) or "xt" (``jdl.kernels.dense``:
        the same values, weight gradients as plain matmuls of a materialized xᵀ; faster on XLA:CPU).
    """

    vocab_size: int
    context: int
    num_layers: int
    d_model: int
    num_heads: int
    d_ff: int | None = None
    dropout: float = 0.0
    tied_head: bool = True
    stack: str = "loop"
    layer_norm_eps: float = 1e-5
    attention: str = "plain"
    fused_qkv: bool = False
    positions: str = "learned"
    rope_base: float = 10000.0
    prev_tokens: int = 0
    ffn_impl: str = "xla"

    def __post_init__(self):
        for name in ("vocab_size", "context", "num_layers", "d_model", "num_heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"GPTConfig: {name} must be a positive int, got {value!r}")
        if self.d_model % self.num_heads:
            raise ValueError(f"GPTConfig: d_model={self.d_model} is not divisible by num_heads={self.num_heads}")
        if self.d_ff is None:
            object.__setattr__(self, "d_ff", 4 * self.d_model)
        if not isinstance(self.d_ff, int) or self.d_ff < 1:
            raise ValueError(f"GPTConfig: d_ff must be a positive int or None, got {self.d_ff!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig: dropout must be in [0, 1), got {self.dropout!r}")
        for name, allowed in (("stack", STACKS), ("attention", IMPLS), ("positions", POSITIONS),
                              ("ffn_impl", FFN_IMPLS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"GPTConfig: {name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.dropout and self.attention != "plain":
            raise ValueError(f"GPTConfig: dropout={self.dropout} drops attention weights, which needs "
                             f"attention='plain', got {self.attention!r}")
        if not isinstance(self.prev_tokens, int) or self.prev_tokens < 0:
            raise ValueError(f"GPTConfig: prev_tokens must be an int >= 0, got {self.prev_tokens!r}")
        if not self.layer_norm_eps > 0:
            raise ValueError(f"GPTConfig: layer_norm_eps must be > 0, got {self.layer_norm_eps!r}")


def layer_norm(params: Params, x: jax.Array, eps: float) -> jax.Array:
    """LN(x) = γ·(x − μ)/√(σ² + ε) + β over the last axis (``jdl.nn.LayerNorm``'s function).

    Shapes: x (..., C), gamma, beta (C,) → (..., C).
    """
    mean, var = moments(x, (-1,))  # (..., 1)
    return normalize(x, mean, var, params["gamma"], params["beta"], eps)


def block(params: Params, x: jax.Array, attend, config: GPTConfig, key: PRNGKey | None = None):
    """One Pre-LN block: x ← x + A(LN_1(x)), then x ← x + FFN(LN_2(x)) with
    FFN(u) = GELU_tanh(u W_1 + b_1) W_2 + b_2 (``jdl.nn.feed_forward``, params ``fc1``, ``fc2``).

    ``attend(attn_params, u) -> (y, aux)`` is the attention sublayer: causal self-attention
    over the whole sequence in training, or attention against a KV cache when decoding
    (``aux`` is then the updated cache). Dropout (probability ``config.dropout``) on both
    sublayers' outputs when ``key`` is given.

    Shapes: x (B, T, C) → (y (B, T, C), aux).
    """
    drop = lambda i, y: dropout_fn(jax.random.fold_in(key, i), y, config.dropout) if key is not None else y
    a, aux = attend(params["attn"], layer_norm(params["ln_1"], x, config.layer_norm_eps))  # (B, T, C)
    x = x + drop(0, a)
    u = layer_norm(params["ln_2"], x, config.layer_norm_eps)  # (B, T, C)
    x = x + drop(1, feed_forward(params["mlp"], u, ACTIVATIONS["gelu_tanh"], impl=config.ffn_impl))  # GPT-2's GELU
    return x, aux


def init_block(key: PRNGKey, config: GPTConfig, dtype: Any = jnp.float32) -> Params:
    """A block's params, initialized as GPT-2: weights N(0, 0.02²), the two projections into
    the residual stream (``attn/o``, ``mlp/fc2``) N(0, (0.02/√(2N))²) so the stream's variance
    does not grow with depth N, zero biases, LayerNorm γ = 1, β = 0.

    Params: ln_1, ln_2 {gamma, beta (C,)}; attn {q, k, v, o: {w (C, C), b (C,)}};
    mlp {fc1: {w (C, d_ff), b (d_ff,)}, fc2: {w (d_ff, C), b (C,)}}.
    """
    C, F = config.d_model, config.d_ff
    normal = lambda i, shape, std: std * jax.random.normal(jax.random.fold_in(key, i), shape, dtype)
    dense_p = lambda i, d_in, d_out, std: {"w": normal(i, (d_in, d_out), std), "b": jnp.zeros((d_out,), dtype)}
    ln = lambda: {"gamma": jnp.ones((C,), dtype), "beta": jnp.zeros((C,), dtype)}
    resid_std = 0.02 / math.sqrt(2 * config.num_layers)
    return {
        "ln_1": ln(),
        "attn": {"q": dense_p(0, C, C, 0.02), "k": dense_p(1, C, C, 0.02),
                 "v": dense_p(2, C, C, 0.02), "o": dense_p(3, C, C, resid_std)},
        "ln_2": ln(),
        "mlp": {"fc1": dense_p(4, C, F, 0.02), "fc2": dense_p(5, F, C, resid_std)},
    }


def gpt_block(config: GPTConfig) -> Module:
    """The block as a ``jdl.Module`` over (B, T, C) activations, causal self-attention
    (``block`` with ``multi_head_attention(causal=True)``); ``gpt`` stacks N of them.

    Shapes: x (B, T, d_model) float → (B, T, d_model).
    """
    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        return init_block(key, config, shape_struct(x).dtype), {}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False):
        p_drop = config.dropout if train else 0.0
        if p_drop:
            check_key("gpt_block", key, train)
        key = key if p_drop else None

        def attend(p, u):
            return multi_head_attention(p, u, config.num_heads, causal=True, dropout=p_drop, key=fold_in(key, 2),
                                        impl=config.attention, fused_qkv=config.fused_qkv,
                                        rotary_base=rotary_base(config))

        y, _ = block(params, x, attend, config, key)
        return y, state

    return leaf(init, apply, "block")


def block_stack(config: GPTConfig) -> Module:
    """N blocks: ``serial`` of N (stack="loop") or ``repeat`` of one (stack="repeat").
    Both give block i the key fold_in(key, i), so they agree given the same params."""
    one = gpt_block(config)
    return repeat(one, config.num_layers) if config.stack == "repeat" else serial(*[one] * config.num_layers)


def stack_blocks(blocks: Params) -> Params:
    """Loop-layout block params {'0_block': p_0, …} → the repeat layout, each leaf stacked on a
    new leading axis: (N, *shape)."""
    n = len(blocks)
    return jax.tree.map(lambda *xs: jnp.stack(xs), *[blocks[f"{i}_block"] for i in range(n)])


def unstack_blocks(blocks: Params) -> Params:
    """Repeat-layout (stacked) block params → {'0_block': p_0, …, 'N−1_block': p_{N−1}}."""
    n = jax.tree.leaves(blocks)[0].shape[0]
    return {f"{i}_block": jax.tree.map(lambda a, i=i: a[i], blocks) for i in range(n)}


def rotary_base(config: GPTConfig) -> float | None:
    """RoPE's base for the blocks' queries and keys, or None with learned positions."""
    return config.rope_base if config.positions == "rotary" else None


def embed_tokens(params: Params, ids: jax.Array, positions: jax.Array) -> jax.Array:
    """h_0 = W_te[ids] + W_pe[positions] (a position past the table gives NaN), or W_te[ids]
    when there is no ``wpe`` table (rotary positions); with a ``prev`` table (n, V, C) also
    + Σ_{j=1..n} W_prev_j[x_{t−j}], zero where t − j < 0 (ids are a whole sequence from its start).

    Shapes: ids (B, T) int, positions (T,) int → (B, T, d_model).
    """
    h = embed(params["wte"], ids)  # (B, T, C)
    for j, w in enumerate(params["prev"]["w"] if "prev" in params else (), 1):  # w (V, C)
        h = h + jnp.pad(embed({"w": w}, ids), ((0, 0), (j, 0), (0, 0)))[:, :ids.shape[1]]  # x_{t−j}'s row
    return h + embed(params["wpe"], positions)[None] if "wpe" in params else h  # (B, T, C)


def lm_logits(params: Params, config: GPTConfig, h: jax.Array) -> jax.Array:
    """logits = LN_f(h) W_head with W_head = W_teᵀ (tied) or ``head/w``; the matmul runs on
    (B·T, C) operands.

    Shapes: h (B, T, C) → (B, T, V).
    """
    B, T, C = h.shape
    h = layer_norm(params["ln_f"], h, config.layer_norm_eps).reshape(B * T, C)  # (B·T, C)
    w = params["wte"]["w"].T if config.tied_head else params["head"]["w"]  # (C, V)
    return (h @ w).reshape(B, T, -1)  # (B·T, V) → (B, T, V)


def check_ids(name: str, ids: Any, config: GPTConfig, first: int = 0) -> None:
    """Raise unless ``ids`` is an integer (B, T) array that fits the context from ``first``."""
    check_integer(name, ids)
    if ids.ndim != 2:
        raise ValueError(f"{name}: expected token ids of shape (B, T), got shape {tuple(ids.shape)}")
    if first + ids.shape[1] > config.context:
        raise ValueError(f"{name}: {first + ids.shape[1]} positions exceed the context of {config.context} "
                         f"(the learned position table); pass at most {config.context - first} tokens")


def gpt(config: GPTConfig) -> Module:
    """A GPT language model as a ``jdl.Module``: token ids → next-token logits.

    h_0 = W_te[x] + W_pe[0..T−1]; N Pre-LN causal blocks; logits = LN_f(h_N) W_head.
    Position t's logits depend on tokens 0..t only (causal self-attention).

    Shapes: ids (B, T) int with T ≤ context → logits (B, T, vocab_size).
    Params: ``wte`` {w (V, C)}, ``wpe`` {w (context, C)} (learned positions), ``blocks`` (``block_stack``'s:
    '{i}_block' keys, or stacked leaves (N, …) with stack="repeat"), ``ln_f`` {gamma, beta},
    and ``head`` {w (C, V)} when the head is untied. Embeddings are N(0, 0.02²), as GPT-2.
    ``apply(..., key=k, train=True)`` applies dropout (config.dropout).

    >>> import jax, jax.numpy as jnp
    >>> model = gpt(GPTConfig(vocab_size=50, context=16, num_layers=2, d_model=32, num_heads=4))
    >>> params, state = model.init(jax.random.key(0), jnp.zeros((1, 8), jnp.int32))
    >>> model.apply(params, state, jnp.zeros((3, 8), jnp.int32))[0].shape
    (3, 8, 50)
    """
    if not isinstance(config, GPTConfig):
        raise TypeError(f"gpt: expected a GPTConfig, got {type(config).__name__}")
    stack = block_stack(config)
    C, V = config.d_model, config.vocab_size

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        check_ids("gpt", shape_struct(x), config)
        k_te, k_pe, k_blocks, k_head = jax.random.split(key, 4)
        params = {"wte": {"w": 0.02 * jax.random.normal(k_te, (V, C))}}
        if config.positions == "learned":
            params["wpe"] = {"w": 0.02 * jax.random.normal(k_pe, (config.context, C))}
        params["blocks"], _ = stack.init(k_blocks, jax.ShapeDtypeStruct((1, 1, C), jnp.float32))
        params["ln_f"] = {"gamma": jnp.ones((C,)), "beta": jnp.zeros((C,))}
        if config.prev_tokens:
            params["prev"] = {"w": 0.02 * jax.random.normal(jax.random.fold_in(key, 5), (config.prev_tokens, V, C))}
        if not config.tied_head:
            params["head"] = {"w": 0.02 * jax.random.normal(k_head, (C, V))}
        return params, {}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False):
        ids = jnp.asarray(x)
        check_ids("gpt", ids, config)
        p_drop = config.dropout if train else 0.0
        if p_drop:
            check_key("gpt", key, train)
        h = embed_tokens(params, ids, jnp.arange(ids.shape[1]))  # (B, T, C)
        if p_drop:
            h = dropout_fn(jax.random.fold_in(key, 0), h, p_drop)
        h, _ = stack.apply(params["blocks"], {}, h, key=fold_in(key, 1), train=train)  # (B, T, C)
        return lm_logits(params, config, h), state

    return leaf(init, apply, "gpt")
