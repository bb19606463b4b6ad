"""The encoder–decoder Transformer (Vaswani et al., 2017) for sequence-to-sequence tasks:

    z = Encoder(√d·E_src[src] + P),    logits = Head(Decoder(√d·E_tgt[tgt] + P, context=z))

The encoder reads the whole source; the decoder predicts target token t + 1 from target tokens
≤ t (causal self-attention) and the source (cross-attention to z). Train it with teacher
forcing (tgt = [bos, y_1, …, y_{T−1}], labels = [y_1, …, y_T]); generate with ``greedy_decode``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp

from jdl.core import Module, Params, PRNGKey, State, check_integer, fold_in, leaf, shape_struct
from jdl.nn.dropout import dropout as dropout_fn
from jdl.nn.embedding import Embedding, embed
from jdl.nn.linear import Dense
from jdl.nn.positions import LearnedPositions, SinusoidalPositions
from jdl.nn.transformer_stack import TransformerDecoder, TransformerEncoder


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """The sizes of an encoder–decoder Transformer (defaults: the paper's base model, but
    Pre-LN). ``positions`` is 'sinusoidal' or 'learned' (then at most ``max_len`` tokens);
    ``tie_output`` computes the logits with the target embedding, h·E_tgtᵀ, instead of a Dense
    head (the paper ties them); ``scan`` stacks the blocks with ``repeat``."""

    src_vocab: int
    tgt_vocab: int
    d_model: int = 512
    num_heads: int = 8
    num_layers: int = 6
    d_ff: int = 2048
    norm_first: bool = True
    activation: str = "relu"
    dropout: float = 0.1
    positions: str = "sinusoidal"
    max_len: int = 512
    tie_output: bool = False
    scan: bool = False

    def __post_init__(self):
        if self.positions not in ("sinusoidal", "learned"):
            raise ValueError(f"TransformerConfig: positions must be 'sinusoidal' or 'learned', "
                             f"got {self.positions!r}")


def _parts(c: TransformerConfig) -> dict[str, Module]:
    stack = dict(norm_first=c.norm_first, activation=c.activation, dropout=c.dropout, scan=c.scan)
    pos = (lambda: LearnedPositions(c.max_len)) if c.positions == "learned" else SinusoidalPositions
    parts = {"src_embed": Embedding(c.src_vocab, c.d_model), "tgt_embed": Embedding(c.tgt_vocab, c.d_model),
             "src_pos": pos(), "tgt_pos": pos(),
             "encoder": TransformerEncoder(c.num_layers, c.num_heads, c.d_model, c.d_ff, **stack),
             "decoder": TransformerDecoder(c.num_layers, c.num_heads, c.d_model, c.d_ff, **stack)}
    if not c.tie_output:
        parts["head"] = Dense(c.tgt_vocab)
    return parts


def _embed(c: TransformerConfig, params: Params, side: str, ids: Any, key: PRNGKey | None,
           train: bool) -> jax.Array:
    """x = Dropout(√d_model·E[ids] + P): the paper scales the embeddings up to the positions'
    unit amplitude (jdl's N(0, 1/d) embeddings then have unit-variance entries)."""
    check_integer("encoder_decoder", ids)
    e = embed(params[f"{side}_embed"], ids) * math.sqrt(c.d_model)  # (B, T, d)
    x, _ = _parts(c)[f"{side}_pos"].apply(params.get(f"{side}_pos", {}), {}, e)
    if train and c.dropout and key is not None:
        x = dropout_fn(key, x, c.dropout)
    return x


def _src_mask(src_mask: Any) -> jax.Array | None:
    """(B, S) booleans, True for real source tokens → the padding mask (B, 1, S)."""
    if src_mask is None:
        return None
    src_mask = jnp.asarray(src_mask)
    if src_mask.ndim != 2 or src_mask.dtype != bool:
        raise ValueError(f"encoder_decoder: src_mask must be booleans of shape (B, S), True for "
                         f"real tokens, got {src_mask.dtype} {tuple(src_mask.shape)}")
    return src_mask[:, None, :]  # (B, 1, S): the same for every query


def encode(c: TransformerConfig, params: Params, src: Any, *, src_mask: Any = None,
           key: PRNGKey | None = None, train: bool = False) -> jax.Array:
    """z = Encoder(√d·E_src[src] + P), attending only to real tokens where ``src_mask``.

    Shapes: src (B, S) ints, src_mask (B, S) bool → z (B, S, d_model).
    """
    x = _embed(c, params, "src", src, fold_in(key, 0), train)
    z, _ = _parts(c)["encoder"].apply(params["encoder"], {}, x, mask=_src_mask(src_mask),
                                      key=fold_in(key, 1), train=train)
    return z


def decode(c: TransformerConfig, params: Params, tgt: Any, z: jax.Array, *, src_mask: Any = None,
           key: PRNGKey | None = None, train: bool = False) -> jax.Array:
    """logits = Head(Decoder(√d·E_tgt[tgt] + P, context=z)); position t sees tgt[:, :t+1].

    Shapes: tgt (B, T) ints, z (B, S, d_model), src_mask (B, S) → logits (B, T, tgt_vocab).
    """
    x = _embed(c, params, "tgt", tgt, fold_in(key, 2), train)
    h, _ = _parts(c)["decoder"].apply(params["decoder"], {}, x, context=z,
                                      context_mask=_src_mask(src_mask), key=fold_in(key, 3),
                                      train=train)
    if c.tie_output:
        return h @ params["tgt_embed"]["w"].T  # (B, T, d) @ (d, V) → (B, T, V)
    return Dense(c.tgt_vocab).apply(params["head"], {}, h)[0]  # (B, T, V)


def encoder_decoder(config: TransformerConfig) -> Module:
    """The encoder–decoder Transformer as a ``Module``: x = (src, tgt) token ids →
    logits = decode(tgt, encode(src)) of the next target token at every target position.

    ``apply(params, state, (src, tgt), *, src_mask=None, key=None, train=False)``; ``src_mask``
    (B, S) is True for real source tokens (False for padding).

    Shapes: src (B, S), tgt (B, T) ints → (B, T, tgt_vocab). Params: ``src_embed``,
    ``tgt_embed`` ({w}), ``src_pos``/``tgt_pos`` (learned positions only), ``encoder``,
    ``decoder`` (``TransformerEncoder``/``TransformerDecoder``), ``head`` ({w, b}, untied only).
    """
    c = config

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        src, tgt = (shape_struct(a) for a in x)
        for ids in (src, tgt):
            check_integer("encoder_decoder", ids)
        parts, params = _parts(c), {}
        feats = {s: jax.ShapeDtypeStruct((*ids.shape, c.d_model), jnp.float32)
                 for s, ids in (("src", src), ("tgt", tgt))}
        inputs = {"src_embed": src, "tgt_embed": tgt, "src_pos": feats["src"], "tgt_pos": feats["tgt"],
                  "encoder": feats["src"], "decoder": feats["tgt"], "head": feats["tgt"]}
        for i, (name, part) in enumerate(parts.items()):
            p, _ = part.init(jax.random.fold_in(key, i), inputs[name])
            if p:
                params[name] = p
        return params, {}

    def apply(params: Params, state: State, x: Any, *, src_mask: Any = None, key=None, train=False):
        src, tgt = x
        z = encode(c, params, src, src_mask=src_mask, key=fold_in(key, 0), train=train)
        return decode(c, params, tgt, z, src_mask=src_mask, key=fold_in(key, 1), train=train), state

    module = leaf(init, apply, "encoder_decoder", accepts={"src_mask"})
    return module._replace(children=tuple(_parts(c).values()))


def greedy_decode(c: TransformerConfig, params: Params, src: Any, bos: int, length: int, *,
                  src_mask: Any = None) -> jax.Array:
    """Greedy generation: y_0 = bos, y_{t+1} = argmax_v logits(y_0 … y_t)_v, for ``length``
    tokens, recomputing the decoder on the whole prefix each step (no cache: O(length²)) inside
    one ``lax.fori_loop``; the encoder runs once.

    Shapes: src (B, S) → (B, length) token ids (bos not included).
    """
    z = encode(c, params, src, src_mask=src_mask)
    B = z.shape[0]
    buf = jnp.full((B, length + 1), bos, jnp.int32)  # (B, 1 + length): bos, then the outputs

    def step(t, buf):
        logits = decode(c, params, buf[:, :-1], z, src_mask=src_mask)  # (B, length, V): causal
        nxt = jnp.argmax(logits[:, t], axis=-1).astype(jnp.int32)  # (B,): position t's prediction
        return buf.at[:, t + 1].set(nxt)

    return jax.lax.fori_loop(0, length, step, buf)[:, 1:]
