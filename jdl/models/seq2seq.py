"""The LSTM encoder–decoder (Sutskever, Vinyals & Le, 2014; Cho et al., 2014) for
sequence-to-sequence tasks, the recurrent counterpart of ``jdl.models.transformer``:

    (h_S, c_S) = Encoder(E_src[src])                    the last carry of each encoder layer
    logits_t = Head(Decoder(E_tgt[tgt_≤t], carry_0 = (h_S, c_S)))

The whole source is squeezed into the encoder's final carry (one (h, c) pair per layer), which
starts the decoder's layer of the same depth; the decoder is a conditional language model of
the target. Train it with teacher forcing (tgt = [bos, y_1, …, y_{T−1}], labels = [y_1, …,
y_T]); generate with ``lstm_greedy_decode``, which carries the decoder state from token to
token (O(length), unlike the Transformer's recomputed prefix).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from jdl.core import Module, Params, PRNGKey, State, check_integer, leaf, shape_struct
from jdl.nn.embedding import Embedding, embed
from jdl.nn.linear import Dense
from jdl.nn.recurrent import LSTM
from jdl.nn.recurrent_stack import StackedRNN


@dataclasses.dataclass(frozen=True)
class Seq2SeqConfig:
    """The sizes of an LSTM encoder–decoder: token embeddings of ``d_embed`` on each side, and
    ``num_layers`` stacked LSTMs of ``hidden`` units in the encoder and in the decoder (layer
    l of the decoder starts from the final carry of encoder layer l), then a Dense head.
    ``forget_bias`` is ``nn.LSTM``'s (1.0; PyTorch starts at 0)."""

    src_vocab: int
    tgt_vocab: int
    d_embed: int = 64
    hidden: int = 256
    num_layers: int = 1
    forget_bias: float = 1.0

    def __post_init__(self):
        for name in ("src_vocab", "tgt_vocab", "d_embed", "hidden", "num_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Seq2SeqConfig: {name} must be a positive int, got {value!r}")


def _stack(c: Seq2SeqConfig) -> Module:
    """``num_layers`` LSTMs that return their sequences and final carries."""
    return StackedRNN([LSTM(c.hidden, return_carry=True, forget_bias=c.forget_bias)
                       for _ in range(c.num_layers)])


def _parts(c: Seq2SeqConfig) -> dict[str, Module]:
    return {"src_embed": Embedding(c.src_vocab, c.d_embed), "tgt_embed": Embedding(c.tgt_vocab, c.d_embed),
            "encoder": _stack(c), "decoder": _stack(c), "head": Dense(c.tgt_vocab)}


def _check_src_mask(src: jax.Array, src_mask: Any) -> jax.Array | None:
    """(B, S) booleans, True for real source tokens, or None."""
    if src_mask is None:
        return None
    src_mask = jnp.asarray(src_mask)
    if src_mask.dtype != bool or src_mask.shape != src.shape:
        raise ValueError(f"lstm_encoder_decoder: src_mask must be booleans of shape (B, S) = "
                         f"{tuple(src.shape)}, True for real tokens, got {src_mask.dtype} "
                         f"{tuple(src_mask.shape)}")
    return src_mask


def lstm_encode(c: Seq2SeqConfig, params: Params, src: Any, *, src_mask: Any = None) -> tuple:
    """The source read into the encoder's final carries: (h_S, c_S) of each layer, where S is
    each sequence's own length under ``src_mask`` (the state is frozen over padding).

    Shapes: src (B, S) ints, src_mask (B, S) bool → a tuple of ``num_layers`` LSTMCarry(h, c),
    each (B, hidden).

    Args:
      c: the model's ``Seq2SeqConfig``. params: its params. src: source token ids.
      src_mask: True for real source tokens (right padding), or None (no padding).
    """
    src = jnp.asarray(src)
    check_integer("lstm_encoder_decoder", src)
    mask = _check_src_mask(src, src_mask)
    x = embed(params["src_embed"], src)  # (B, S, d_embed)
    (_, carry), _ = _stack(c).apply(params["encoder"], {}, x, mask=mask)
    return carry


def lstm_decode(c: Seq2SeqConfig, params: Params, tgt: Any, carry: tuple) -> tuple[jax.Array, tuple]:
    """Decoder steps from ``carry``: logits_t = Head(h_t), h_t the top layer's state after
    reading tgt_1 … tgt_t (teacher forcing over a whole target, or one token at a time).

    Shapes: tgt (B, T) ints, carry: num_layers × LSTMCarry((B, hidden), (B, hidden))
    → (logits (B, T, tgt_vocab), the carry after step T).

    Args:
      c: the model's ``Seq2SeqConfig``. params: its params. tgt: decoder input token ids.
      carry: the decoder's starting carry (``lstm_encode``'s, or a previous call's).
    """
    tgt = jnp.asarray(tgt)
    check_integer("lstm_encoder_decoder", tgt)
    x = embed(params["tgt_embed"], tgt)  # (B, T, d_embed)
    (h, carry), _ = _stack(c).apply(params["decoder"], {}, x, carry=carry)  # h (B, T, hidden)
    B, T, H = h.shape
    logits = Dense(c.tgt_vocab).apply(params["head"], {}, h.reshape(B * T, H))[0]  # (B·T, V)
    return logits.reshape(B, T, -1), carry  # (B, T, V)


def lstm_encoder_decoder(config: Seq2SeqConfig) -> Module:
    """The LSTM encoder–decoder as a ``Module``: x = (src, tgt) token ids → the logits of the
    next target token at every target position, the decoder started from the encoder's final
    carries (``lstm_encode``, ``lstm_decode``).

    ``apply(params, state, (src, tgt), *, src_mask=None, key=None, train=False)``; ``src_mask``
    (B, S) is True for real source tokens (False for padding, which the encoder skips).

    Shapes: src (B, S), tgt (B, T) ints → (B, T, tgt_vocab). Params: ``src_embed``,
    ``tgt_embed`` ({w}), ``encoder``, ``decoder`` (``StackedRNN`` of LSTMs: {'0_lstm': {w_x,
    w_h, b}, …}), ``head`` ({w, b}).
    """
    c = config

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        src, tgt = (shape_struct(a) for a in x)
        for ids in (src, tgt):
            check_integer("lstm_encoder_decoder", ids)
        parts = _parts(c)
        emb = {s: jax.ShapeDtypeStruct((*ids.shape, c.d_embed), jnp.float32) for s, ids in (("src", src), ("tgt", tgt))}
        inputs = {"src_embed": src, "tgt_embed": tgt, "encoder": emb["src"], "decoder": emb["tgt"],
                  "head": jax.ShapeDtypeStruct((tgt.shape[0] * tgt.shape[1], c.hidden), jnp.float32)}
        params = {name: part.init(jax.random.fold_in(key, i), inputs[name])[0]
                  for i, (name, part) in enumerate(parts.items())}
        return params, {}

    def apply(params: Params, state: State, x: Any, *, src_mask: Any = None, key=None, train=False):
        del key, train
        src, tgt = x
        carry = lstm_encode(c, params, src, src_mask=src_mask)
        return lstm_decode(c, params, tgt, carry)[0], state

    module = leaf(init, apply, "lstm_encoder_decoder", accepts={"src_mask"})
    return module._replace(children=tuple(_parts(c).values()))


def lstm_greedy_decode(c: Seq2SeqConfig, params: Params, src: Any, bos: int, length: int, *,
                       src_mask: Any = None) -> jax.Array:
    """Greedy generation: y_0 = bos, y_{t+1} = argmax_v Head(h_{t+1})_v with h_{t+1} the decoder
    state after reading y_t, for ``length`` tokens; the decoder carry is threaded through one
    ``lax.scan`` (one LSTM step per token), the encoder runs once.

    Shapes: src (B, S) → (B, length) token ids (bos not included).

    Args:
      c: the model's ``Seq2SeqConfig``. params: its params. src: source token ids.
      bos: the start token fed first. length: how many tokens to generate (an EOS is generated
        like any other token; cut the output at it).
      src_mask: True for real source tokens, or None.
    """
    carry = lstm_encode(c, params, src, src_mask=src_mask)
    B = jnp.shape(src)[0]

    def step(state, _):
        y, carry = state  # y (B,) the last token
        logits, carry = lstm_decode(c, params, y[:, None], carry)  # (B, 1, V)
        y = jnp.argmax(logits[:, 0], axis=-1).astype(jnp.int32)  # (B,)
        return (y, carry), y

    _, ys = jax.lax.scan(step, (jnp.full((B,), bos, jnp.int32), carry), None, length=length)
    return jnp.swapaxes(ys, 0, 1)  # (length, B) → (B, length)
