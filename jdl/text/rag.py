"""Generation conditioned on retrieved passages: the passage is put in front of the prompt,
    prompt' = passage + separator + prompt,
and a language model continues prompt'. Prompts of different lengths go through as one
right-padded batch: a causal model's logits at position t read tokens 0..t only, so the
padding after each row's end changes nothing before it.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jdl.core import Params
from jdl.data.text import Vocab, encode
from jdl.models.gpt import GPTConfig, gpt


def pad_right(vocab: Vocab, texts: Sequence[str], length: int) -> tuple[np.ndarray, np.ndarray]:
    """Each text's ids, keeping its last ``length`` characters, right-padded with id 0.

    Shapes: D texts → ids (D, length) int32, lengths (D,) int32 (each ≥ 1)."""
    ids = np.zeros((len(texts), length), np.int32)
    lengths = np.zeros(len(texts), np.int32)
    for i, text in enumerate(texts):
        e = encode(vocab, text)[-length:]
        if not len(e):
            raise ValueError(f"pad_right: text {i} is empty; every prompt needs at least one token")
        ids[i, :len(e)], lengths[i] = e, len(e)
    return ids, lengths


def greedy_continue(params: Params, config: GPTConfig, ids: jax.Array, lengths: jax.Array, n: int) -> jax.Array:
    """n greedy steps on a right-padded batch: for each row, x_{T_b} = argmax logits_{T_b − 1},
    T_b ← T_b + 1, recomputing the whole window each step (no KV cache: the rows end at
    different positions). Rows must leave n free places: T_b + n ≤ T.

    Shapes: ids (B, T) int, lengths (B,) int → the n new ids (B, n) int32.
    """
    if ids.shape[1] > config.context:
        raise ValueError(f"greedy_continue: {ids.shape[1]} positions exceed the context {config.context}")
    if np.any(np.asarray(lengths) + n > ids.shape[1]) or np.any(np.asarray(lengths) < 1):
        raise ValueError(f"greedy_continue: every row needs 1 <= length and length + n <= T={ids.shape[1]}; "
                         f"got lengths in {int(np.min(lengths))}..{int(np.max(lengths))} with n={n}")
    return _continue(params, config, jnp.asarray(ids, jnp.int32), jnp.asarray(lengths, jnp.int32), n)


def _continue_impl(params, config, ids, lengths, n):
    model, rows = gpt(config), jnp.arange(ids.shape[0])

    def step(i, carry):
        ids, new = carry
        logits, _ = model.apply(params, {}, ids)  # (B, T, V)
        token = jnp.argmax(logits[rows, lengths + i - 1], axis=-1).astype(jnp.int32)  # (B,)
        return ids.at[rows, lengths + i].set(token), new.at[:, i].set(token)

    _, new = jax.lax.fori_loop(0, n, step, (ids, jnp.zeros((ids.shape[0], n), jnp.int32)))
    return new  # (B, n)


_continue = jax.jit(_continue_impl, static_argnums=(1, 4))
