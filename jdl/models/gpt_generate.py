"""Generating text with a GPT: a key/value cache, one decode step, and the sampling loop.

A causal block's keys and values at position t depend on tokens 0..t only, so once computed
they never change. The cache keeps them for every layer; a decode step embeds the new tokens
at positions pos..pos+T−1, writes their keys and values into the cache, and lets their queries
attend to cached positions ≤ their own:

    K_cache[:, :, pos:pos+T] ← X_new W_k,   V_cache[:, :, pos:pos+T] ← X_new W_v
    (rotary positions: Q_new and the new keys rotated by their positions pos..pos+T−1 first,
    so the cache holds rotated keys, R_s k_s, as the full forward pass computes them)
    head = softmax(Q_new K_cacheᵀ/√d_k + M) V_cache,   M_ij = 0 if j ≤ pos + i else −∞

which gives the logits of recomputing the whole prefix, at O(T·S) instead of O(S²) per step.
``position`` is a traced scalar, so one compiled step serves every position; ``generate`` runs
the steps under one ``jax.lax.scan`` and compiles once for all of them.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jdl.core import Params
from jdl.models.gpt import GPTConfig, block, check_ids, embed_tokens, lm_logits, rotary_base
from jdl.models.sampling_filters import greedy, next_token
from jdl.nn.attention import dot_product_attention
from jdl.nn.multihead import project_out, project_qkv
from jdl.nn.rope import rope


class KVCache(NamedTuple):
    """Every layer's keys and values so far: ``k``, ``v`` of shape (N, B, h, S, d_k), N layers,
    S = max_len positions (zeros where nothing has been written yet)."""

    k: jax.Array
    v: jax.Array


def init_cache(config: GPTConfig, batch: int, max_len: int, dtype: Any = jnp.float32) -> KVCache:
    """An empty cache for ``batch`` sequences of up to ``max_len`` ≤ context tokens.

    Shapes: → KVCache with k, v (num_layers, batch, num_heads, max_len, d_model/num_heads).
    """
    if not isinstance(max_len, int) or not 1 <= max_len <= config.context:
        raise ValueError(f"init_cache: max_len must be an int in 1..context={config.context}, "
                         f"got {max_len!r}")
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"init_cache: batch must be a positive int, got {batch!r}")
    h = config.num_heads
    shape = (config.num_layers, batch, h, max_len, config.d_model // h)
    return KVCache(jnp.zeros(shape, dtype), jnp.zeros(shape, dtype))


def cached_attention(params: Params, u: jax.Array, k_cache: jax.Array, v_cache: jax.Array,
                     position: Any, num_heads: int, rotary_base: float | None = None):
    """Multi-head attention of T new tokens at positions pos..pos+T−1 against one layer's cache
    (``project_qkv``/``project_out``: the same projections as the full forward pass). With
    ``rotary_base``, q_t ← rope(q_t, t) and k_t ← rope(k_t, t) at t = pos..pos+T−1 before k is
    cached.

    Shapes: u (B, T, C), k_cache, v_cache (B, h, S, d_k) → (y (B, T, C), (k_cache, v_cache)).
    """
    q, k, v = project_qkv(params, u, None, num_heads)  # (B, h, T, d_k) each
    if rotary_base is not None:
        at = position + jnp.arange(q.shape[2])  # (T,): the new tokens' positions
        q, k = rope(q, at, rotary_base), rope(k, at, rotary_base)  # (B, h, T, d_k)
    start = (0, 0, position, 0)
    k_cache = jax.lax.dynamic_update_slice(k_cache, k.astype(k_cache.dtype), start)  # (B, h, S, d_k)
    v_cache = jax.lax.dynamic_update_slice(v_cache, v.astype(v_cache.dtype), start)  # (B, h, S, d_k)
    T, S = q.shape[2], k_cache.shape[2]
    mask = jnp.arange(S)[None, :] <= position + jnp.arange(T)[:, None]  # (T, S): j ≤ pos + i
    z = dot_product_attention(q, k_cache, v_cache, mask)  # (B, h, T, d_k)
    return project_out(params, z), (k_cache, v_cache)  # (B, T, C)


def run_blocks_cached(blocks: Params, config: GPTConfig, x: jax.Array, cache: KVCache,
                      position: Any) -> tuple[jax.Array, KVCache]:
    """The N blocks on new tokens with the cache: a Python loop over '{i}_block' params, or one
    ``lax.scan`` over stacked params and the cache's layer axis (stack="repeat").

    Shapes: x (B, T, C) → (B, T, C), and the cache with positions pos..pos+T−1 written.
    """
    def layer(p, h, k, v):
        attend = lambda a, u: cached_attention(a, u, k, v, position, config.num_heads, rotary_base(config))
        return block(p, h, attend, config)  # (B, T, C), (k, v)

    if config.stack == "repeat":
        def body(h, inputs):
            p, k, v = inputs  # one layer's params and cache
            return layer(p, h, k, v)  # (B, T, C), (k, v)

        x, (k, v) = jax.lax.scan(body, x, (blocks, cache.k, cache.v))  # k, v (N, B, h, S, d_k)
        return x, KVCache(k, v)
    k_all, v_all = cache
    for i in range(config.num_layers):
        x, (k, v) = layer(blocks[f"{i}_block"], x, k_all[i], v_all[i])
        k_all, v_all = k_all.at[i].set(k), v_all.at[i].set(v)
    return x, KVCache(k_all, v_all)


def decode_step(params: Params, config: GPTConfig, cache: KVCache, token_ids: Any,
                position: Any) -> tuple[jax.Array, KVCache]:
    """The logits of T new tokens placed at positions pos..pos+T−1 after the cached ones, and
    the cache with their keys and values: equal to ``gpt(config).apply`` on the whole prefix,
    restricted to those positions. T = prompt length fills the cache in one call (prefill);
    T = 1 is one generation step. Pure: the cache is returned, not mutated.

    Positions past the cache's S or the context give NaN logits (a traced ``position`` cannot
    be checked while tracing).

    Shapes: token_ids (B, T) int, position scalar int → (logits (B, T, V), cache).
    """
    ids = jnp.asarray(token_ids)
    check_ids("decode_step", ids, config)
    if config.prev_tokens:
        raise ValueError("decode_step: prev_tokens embeds each token's predecessors, which the new tokens "
                         "alone do not hold; run gpt(config).apply on the whole sequence")
    if ids.shape[0] != cache.k.shape[1]:
        raise ValueError(f"decode_step: token_ids have batch {ids.shape[0]} but the cache was "
                         f"made for batch {cache.k.shape[1]}")
    T, S = ids.shape[1], cache.k.shape[3]
    h = embed_tokens(params, ids, position + jnp.arange(T))  # (B, T, C)
    h, cache = run_blocks_cached(params["blocks"], config, h, cache, position)  # (B, T, C)
    logits = lm_logits(params, config, h)  # (B, T, V)
    return jnp.where(position + T <= S, logits, jnp.nan), cache


@functools.partial(jax.jit, static_argnames=("config", "n"))
def _generate(params, config, prompt_ids, n, key, temperature, top_k, top_p):
    B, T = prompt_ids.shape
    cache = init_cache(config, B, T + n)
    logits, cache = decode_step(params, config, cache, prompt_ids, 0)  # prefill: (B, T, V)

    def step(carry, i):
        cache, z = carry  # z (B, V): the logits of the next position
        if key is None:
            token = greedy(z)  # (B,)
        else:
            token = next_token(jax.random.fold_in(key, i), z, temperature, top_k, top_p)  # (B,)
        z, cache = decode_step(params, config, cache, token[:, None], T + i)  # (B, 1, V)
        return (cache, z[:, 0]), token

    _, new = jax.lax.scan(step, (cache, logits[:, -1]), jnp.arange(n))  # new (n, B)
    return jnp.concatenate([prompt_ids, new.T.astype(prompt_ids.dtype)], axis=1)  # (B, T + n)


def generate(params: Params, config: GPTConfig, prompt_ids: Any, n: int, key: jax.Array | None,
             *, temperature: float = 1.0, top_k: int | None = None,
             top_p: float | None = None) -> jax.Array:
    """Extend each prompt by n tokens, y_t ~ next_token(logits_t) (greedy when temperature=0),
    with a KV cache: one prefill ``decode_step`` on the prompt, then n one-token steps under
    ``lax.scan`` (compiled once for every position; once per prompt length and n).

    Shapes: prompt_ids (B, T) int with T + n ≤ context → (B, T + n) ids, the prompts first.

    Args:
      params, config: the model's (``gpt(config).init`` or ``from_gpt2``).
      prompt_ids: B prompts of the same length T ≥ 1.
      n: the number of tokens to generate.
      key: a ``jax.random`` key; step i samples with fold_in(key, i). None for greedy.
      temperature, top_k, top_p: as ``jdl.models.sampling_filters.next_token``.
    """
    ids = jnp.asarray(prompt_ids)
    check_ids("generate", ids, config)
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"generate: n must be a positive int, got {n!r}")
    check_ids("generate", ids, config, first=n)
    if ids.shape[1] < 1:
        raise ValueError("generate: the prompts must hold at least one token")
    if not temperature >= 0:
        raise ValueError(f"generate: temperature must be >= 0 (0 is greedy), got {temperature!r}")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"generate: top_k must be a positive int or None, got {top_k!r}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"generate: top_p must be in (0, 1] or None, got {top_p!r}")
    if key is None and temperature != 0:
        raise ValueError("generate: sampling with temperature > 0 needs a key, e.g. "
                         "generate(params, config, prompt, n, jax.random.key(0))")
    if temperature == 0:
        key = None  # greedy: no draws
    return _generate(params, config, ids, n, key, temperature, top_k, top_p)
