"""Generation conditioned on retrieved passages: the passage is put in front of the prompt,
    prompt' = passage + separator + prompt,
and a language model continues prompt'. Prompts of different lengths go through as one
right-padded batch: a causal model's logits at position t read tokens 0..t only, so the
padding after each row's end changes nothing before it.
"""

from __future__ import annotations

from typing import Any, Sequence

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


def greedy_continue(params: Params, config: GPTConfig, ids: jax.Array, lengths: jax.Array, n: int,
                    first: Any = None) -> jax.Array:
    """n greedy steps on a right-padded batch: for each row, x_{T_b} = argmax logits_{T_b − 1},
    T_b ← T_b + 1, recomputing the whole window each step (no KV cache: the rows end at
    different positions). Rows must leave n free places: T_b + n ≤ T.

    ``first`` (a (V,) bool mask, optional) constrains the first new token only,

        x_{T_b} = argmax_{v : first_v} logits_{T_b − 1, v},

    e.g. to start an answer that must be a word with a letter; the later steps are free.

    Shapes: ids (B, T) int, lengths (B,) int, first (V,) bool → the n new ids (B, n) int32.
    """
    if ids.shape[1] > config.context:
        raise ValueError(f"greedy_continue: {ids.shape[1]} positions exceed the context {config.context}")
    if np.any(np.asarray(lengths) + n > ids.shape[1]) or np.any(np.asarray(lengths) < 1):
        raise ValueError(f"greedy_continue: every row needs 1 <= length and length + n <= T={ids.shape[1]}; "
                         f"got lengths in {int(np.min(lengths))}..{int(np.max(lengths))} with n={n}")
    first = np.ones(config.vocab_size, bool) if first is None else np.asarray(first, bool)
    if first.shape != (config.vocab_size,) or not first.any():
        raise ValueError(f"greedy_continue: first must be a ({config.vocab_size},) bool mask with a True entry, "
                         f"got shape {first.shape}")
    return _continue(params, config, jnp.asarray(ids, jnp.int32), jnp.asarray(lengths, jnp.int32), n,
                     jnp.asarray(first))


def _continue_impl(params, config, ids, lengths, n, first):
    model, rows = gpt(config), jnp.arange(ids.shape[0])

    def step(i, carry):
        ids, new = carry
        logits, _ = model.apply(params, {}, ids)  # (B, T, V)
        logits = jnp.where((i > 0) | first, logits[rows, lengths + i - 1], -jnp.inf)  # (B, V)
        token = jnp.argmax(logits, axis=-1).astype(jnp.int32)  # (B,)
        return ids.at[rows, lengths + i].set(token), new.at[:, i].set(token)

    _, new = jax.lax.fori_loop(0, n, step, (ids, jnp.zeros((ids.shape[0], n), jnp.int32)))
    return new  # (B, n)


_continue = jax.jit(_continue_impl, static_argnums=(1, 4))


def reader_batch(vocab: Vocab, contexts: Sequence[str], questions: Sequence, length: int,
                 prefix_weight: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training rows for a reader (a language model that answers from retrieved text): row b is
    s = contexts[b] + prefix + answer + end (end: the suffix's first character, which tells
    where the word stops), shifted by one, x = s[:-1], y = s[1:], with the weight of position t

        w_t = 1 if y_t is a character of answer + end,  prefix_weight if y_t is in the prefix
              (after its first character), 0 on the context and the padding,

    so that ``softmax_cross_entropy(logits, y, where=w)`` trains the reader to write the masked
    word after the context (REALM/RAG-style reader training). Rows longer than length + 1 keep
    their last length + 1 characters (the context's start is cut); shorter ones are right-padded
    with id 0.

    Shapes: B contexts and questions → x (B, length) int32, y (B, length) int32, w (B, length) float32.
    """
    if len(contexts) != len(questions):
        raise ValueError(f"reader_batch: got {len(contexts)} contexts for {len(questions)} questions")
    x, y = np.zeros((len(questions), length), np.int32), np.zeros((len(questions), length), np.int32)
    w = np.zeros((len(questions), length), np.float32)
    for b, (c, q) in enumerate(zip(contexts, questions)):
        target = q.answer + q.suffix[:1]
        s = encode(vocab, c + q.prefix + target)[-(length + 1):]
        if len(target) + 1 > len(s):
            raise ValueError(f"reader_batch: length={length} leaves no room for question {b}'s answer")
        n = len(s) - 1
        x[b, :n], y[b, :n] = s[:-1], s[1:]
        w[b, n - len(target):n] = 1.0
        w[b, max(0, n - len(target) - len(q.prefix) + 1):n - len(target)] = prefix_weight
    return x, y, w


def best_window(passage: str, query: str, width: int, stride: int = 2, buckets: int = 4096) -> str:
    """The ``width``-character window of ``passage`` most like ``query``: the windows start at
    0, stride, 2·stride, … (and one ends at the passage's end), and the one chosen is

        argmax_w  ⟨c_w, c_q⟩ / (‖c_w‖·‖c_q‖),   c = hashed character 3- and 4-gram counts
                                                 (``jdl.text.embeddings.char_ngram_counts``)

    the first on ties; a passage of ≤ width characters is returned whole. Concise context for a
    reader that can only copy from a short reach (the course's "retrieved context must be
    relevant and concise").

    Shapes: a passage of L characters → a string of min(L, width) characters.
    """
    from jdl.text.embeddings import char_ngram_counts

    if not isinstance(width, int) or width < 1 or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"best_window: width and stride must be positive ints, got {width!r}, {stride!r}")
    if len(passage) <= width:
        return passage
    starts = sorted(set(range(0, len(passage) - width + 1, stride)) | {len(passage) - width})
    c = char_ngram_counts([passage[s:s + width] for s in starts] + [query], buckets=buckets)  # (W + 1, buckets)
    norms = np.linalg.norm(c, axis=1) + 1e-12
    scores = c[:-1] @ c[-1] / (norms[:-1] * norms[-1])  # (W,)
    s = starts[int(np.argmax(scores))]
    return passage[s:s + width]
