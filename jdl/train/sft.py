"""Supervised fine-tuning (SFT) of a language model on prompt/response pairs: the course's step
from a pre-trained next-token predictor to a model that answers instructions.

A pair is encoded as one token sequence s = prompt ‖ response ‖ END, and the model is trained on
the next-token loss of the response tokens only; the prompt is read, never imitated:

    ℓ(θ) = Σ_{b,t} m_{b,t} · CE(z_{b,t}, s_{b,t+1}) / Σ_{b,t} m_{b,t},
    m_{b,t} = 1 if s_{b,t+1} is a response (or END) token, else 0 (prompt and padding)

(``jdl.losses.softmax_cross_entropy(z, y, where=m)``). Since m = 0 on the prompt, ∂ℓ/∂z_{b,t} is
exactly 0 at every prompt position. The sequence log-probability of a response,

    log π(y | x) = Σ_t m_t log softmax(z_t)[s_{t+1}],

is what DPO compares (``jdl.train.dpo``). ``complete`` decodes answers with the KV cache.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jdl.core import Module
from jdl.data.instructions import END
from jdl.data.text import Vocab, decode, encode
from jdl.losses import softmax_cross_entropy
from jdl.metrics import accuracy
from jdl.nn.activations import log_softmax


def encode_pairs(vocab: Vocab, pairs: Sequence[tuple[str, str]], length: int | None = None,
                 pad_id: int = 0, end: str = END) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of prompt ‖ response ‖ end, right-padded to ``length``, and the response mask.

    Shapes: N pairs → ids (N, L) int32, mask (N, L) float32 with mask[i, t] = 1 exactly where
    token t belongs to response ‖ end (L = ``length``, or the longest pair's length).

    >>> from jdl.data.text import char_vocab
    >>> ids, mask = encode_pairs(char_vocab("ab:\\n"), [("a:", "b")])
    >>> ids.tolist(), mask.tolist()
    ([[2, 1, 3, 0]], [[0.0, 0.0, 1.0, 1.0]])
    """
    prompts = [encode(vocab, p) for p, _ in pairs]
    answers = [encode(vocab, r + end) for _, r in pairs]
    longest = max((len(p) + len(a) for p, a in zip(prompts, answers)), default=0)
    L = longest if length is None else length
    if longest > L:
        raise ValueError(f"encode_pairs: a pair has {longest} tokens but length={L}; pass length >= {longest}")
    ids = np.full((len(pairs), L), pad_id, np.int32)
    mask = np.zeros((len(pairs), L), np.float32)
    for i, (p, a) in enumerate(zip(prompts, answers)):
        ids[i, :len(p) + len(a)] = np.concatenate([p, a])
        mask[i, len(p):len(p) + len(a)] = 1.0
    return ids, mask


def next_token_batch(ids: Any, mask: Any) -> tuple[Any, Any, Any]:
    """(x, y, m) = (s[:, :-1], s[:, 1:], mask[:, 1:]): the model reads x and is scored on
    predicting y where m = 1 (the next token is a response token).

    Shapes: ids, mask (N, L) → x, y (N, L−1) ids, m (N, L−1) float.
    """
    return ids[:, :-1], ids[:, 1:], mask[:, 1:]


def masked_lm_loss(logits: jax.Array, y: jax.Array, m: jax.Array) -> jax.Array:
    """ℓ = Σ m·CE(z, y) / Σ m: the mean next-token cross-entropy over response tokens only.

    Shapes: logits (B, T, V), y (B, T) int, m (B, T) → scalar.
    """
    if m.shape != y.shape:
        raise ValueError(f"masked_lm_loss: the mask has shape {m.shape} but the targets {y.shape}")
    return softmax_cross_entropy(logits, y, where=m)


def sft_objective(model: Module):
    """The SFT loss as a ``jdl.train.make_step`` loss function on batches (x, y, m):
    ``loss_fn(params, state, (x, y, m), key) -> (ℓ, (state', {'accuracy'}))``, with ℓ
    ``masked_lm_loss`` of ``model.apply(params, state, x, key=key, train=True)`` and the accuracy
    over response tokens.

    Shapes: x, y (B, T) ids, m (B, T) float.
    """

    def loss_fn(params, state, batch, key):
        x, y, m = batch
        logits, new_state = model.apply(params, state, x, key=key, train=True)  # (B, T, V)
        return masked_lm_loss(logits, y, m), (new_state, {"accuracy": accuracy(logits, y, where=m)})

    return loss_fn


def sequence_log_probs(logits: jax.Array, y: jax.Array, m: jax.Array) -> jax.Array:
    """log π(response | prompt) = Σ_t m_t log softmax(z_t)[y_t], one number per sequence.

    Shapes: logits (B, T, V), y (B, T) int, m (B, T) → (B,).
    """
    if m.shape != y.shape or logits.shape[:-1] != y.shape:
        raise ValueError(f"sequence_log_probs: expected logits (B, T, V), y and m (B, T); got logits "
                         f"{logits.shape}, y {y.shape}, m {m.shape}")
    token = jnp.take_along_axis(log_softmax(logits), y[..., None], axis=-1)[..., 0]  # (B, T)
    return jnp.sum(token * m, axis=-1)


def _bucket(n: int) -> int:
    """The smallest power of two ≥ max(n, 8): the padded batch size of ``complete``."""
    return max(8, 1 << (n - 1).bit_length())


def complete(params: Any, config: Any, vocab: Vocab, prompts: Sequence[str], max_new: int, *,
             key: jax.Array | None = None, temperature: float = 0.0, stop: str = END,
             batch_size: int = 256) -> list[str]:
    """Each prompt's continuation of ``max_new`` tokens (greedy, or sampled at ``temperature``
    with ``key``), cut before the first ``stop``, by ``jdl.models.gpt_generate.generate`` with
    the KV cache. Prompts are grouped by length (generate takes one length per batch) and each
    batch is padded to a power of two rows, so it compiles once per distinct length and bucket;
    chunk s of length group g samples with fold_in(fold_in(key, g), s).

    Shapes: N prompts → N strings.
    """
    from jdl.models.gpt_generate import generate

    ids = [encode(vocab, p) for p in prompts]
    out: list[str] = [""] * len(prompts)
    lengths = sorted({len(i) for i in ids})
    for g, n in enumerate(lengths):
        rows = [i for i, x in enumerate(ids) if len(x) == n]
        for s in range(0, len(rows), batch_size):
            chunk = rows[s:s + batch_size]
            k = None if key is None else jax.random.fold_in(jax.random.fold_in(key, g), s)
            rows_b = np.stack([ids[i] for i in chunk])  # (b, n)
            padded = np.concatenate([rows_b, np.repeat(rows_b[-1:], _bucket(len(chunk)) - len(chunk), 0)])
            new = generate(params, config, padded, max_new, k, temperature=temperature)[:, n:]  # (b', max_new)
            for i, row in zip(chunk, np.asarray(new)):
                out[i] = decode(vocab, row).split(stop, 1)[0]
    return out
