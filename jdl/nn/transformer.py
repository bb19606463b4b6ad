"""Transformer blocks (Vaswani et al., 2017): multi-head attention and a position-wise
feed-forward network, each wrapped in a residual connection and a LayerNorm, in the two
placements the course teaches:

    Post-LN (the original paper; the course's block "→ residual + LayerNorm"):
        x ← LayerNorm(x + Sublayer(x))
    Pre-LN (the course's Pre-LN Transformer sheet; GPT-2 and most models since):
        x ← x + Sublayer(LayerNorm(x)),   with one final LayerNorm after the last block

Pre-LN keeps an identity path from the output to the input of every block, so deep stacks train
without the learning-rate warm-up Post-LN needs (Xiong et al., 2020). A block maps (B, T, d_model)
to (B, T, d_model): the course's "the entire block doesn't change X dims".

Dropout follows PyTorch's ``TransformerEncoderLayer``: on the attention weights, on the
feed-forward hidden activations, and on each sublayer's output before the residual sum.
"""

from __future__ import annotations

from typing import Any, Callable

import jax

from jdl.core import Module, Params, PRNGKey, State, check_key, fold_in, leaf, shape_struct
from jdl.nn.dropout import _check_p, dropout as dropout_fn
from jdl.nn.feedforward import FeedForward
from jdl.nn.multihead import MultiHeadAttention
from jdl.nn.norm import LayerNorm


def residual_sublayer(x: jax.Array, sublayer: Callable[[jax.Array], jax.Array],
                      norm: Callable[[jax.Array], jax.Array], norm_first: bool) -> jax.Array:
    """One residual sublayer: x + Sublayer(LayerNorm(x)) (Pre-LN, ``norm_first``) or
    LayerNorm(x + Sublayer(x)) (Post-LN).

    Shapes: x (..., d_model); ``sublayer`` and ``norm`` keep the shape → (..., d_model).
    """
    if norm_first:
        return x + sublayer(norm(x))
    return norm(x + sublayer(x))


def _check_block_args(name: str, num_heads: int, d_model: int, d_ff: int, dropout: float) -> None:
    for arg, value in (("num_heads", num_heads), ("d_model", d_model), ("d_ff", d_ff)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: {arg} must be a positive int, got {value!r}")
    _check_p(name, dropout)


def _check_input(name: str, x: Any, d_model: int) -> None:
    if x.ndim not in (2, 3) or x.shape[-1] != d_model:
        raise ValueError(f"{name}: expected an input of shape (B, T, d_model) or (T, d_model) with "
                         f"d_model={d_model}, got {tuple(x.shape)}")


def _block(name: str, attentions: tuple[str, ...], num_heads: int, d_model: int, d_ff: int,
           norm_first: bool, activation: Any, dropout: float) -> tuple:
    """The children of a block and the functions that run them: its attentions (self, then
    cross), the feed-forward network and one LayerNorm per sublayer."""
    _check_block_args(name, num_heads, d_model, d_ff, dropout)
    attn, ffn, norm = (MultiHeadAttention(num_heads, d_model, dropout=dropout),
                       FeedForward(d_ff, activation, dropout), LayerNorm())
    subs = (*attentions, "ffn")

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        x = shape_struct(x)
        _check_input(name, x, d_model)
        params = {}
        for i, sub in enumerate(subs):
            params[sub] = (ffn if sub == "ffn" else attn).init(jax.random.fold_in(key, 2 * i), x)[0]
            params[f"norm{i + 1}"] = norm.init(jax.random.fold_in(key, 2 * i + 1), x)[0]
        return params, {}

    def run(params: Params, x: jax.Array, calls: dict[str, Callable], key: PRNGKey | None,
            train: bool) -> jax.Array:
        """Each sublayer in turn; ``calls[sub](params, h, key, train) -> (y, state)`` runs ``sub``."""
        _check_input(name, x, d_model)
        p = dropout if train else 0.0
        if p:
            check_key(name, key, train)
        for i, sub in enumerate(subs):
            k_sub, k_drop = fold_in(key, 2 * i), fold_in(key, 2 * i + 1)

            def sublayer(h, sub=sub, k_sub=k_sub, k_drop=k_drop):
                y, _ = calls[sub](params[sub], h, k_sub, train)
                return dropout_fn(k_drop, y, p) if p else y

            x = residual_sublayer(x, sublayer, lambda h, i=i: norm.apply(params[f"norm{i + 1}"], {}, h)[0],
                                  norm_first)
        return x

    ff = lambda prm, h, k, train: ffn.apply(prm, {}, h, key=k, train=train)
    return init, run, attn, ff


def TransformerBlock(num_heads: int, d_model: int, d_ff: int, *, norm_first: bool = True,
                     activation: str | Callable = "gelu", dropout: float = 0.0,
                     causal: bool = False) -> Module:
    """An encoder block: self-attention, then a feed-forward network, each a residual sublayer.

        Pre-LN  (norm_first=True):   x ← x + MHA(LN₁(x)),   x ← x + FFN(LN₂(x))
        Post-LN (norm_first=False):  x ← LN₁(x + MHA(x)),   x ← LN₂(x + FFN(x))

    FFN(x) = φ(x W_1 + b_1) W_2 + b_2 (``FeedForward``). With ``causal=True`` token t attends to
    tokens ≤ t only (a GPT block). Equal to PyTorch's ``TransformerEncoderLayer(d_model,
    num_heads, d_ff, dropout, activation, batch_first=True, norm_first=norm_first)`` given the
    same weights.

    ``apply(params, state, x, *, mask=None, key=None, train=False)``: ``mask`` is boolean
    (True = attend), any shape ``MultiHeadAttention`` takes: (T, T), (B, T, T), (B, h, T, T),
    or a padding mask (B, 1, T).

    Shapes: x (B, T, d_model) or (T, d_model) → same shape. Params: ``attn`` (MultiHeadAttention:
    q, k, v, o), ``norm1``, ``ffn`` (fc1, fc2), ``norm2`` ({gamma, beta} of d_model).

    Args:
      num_heads: h, the attention heads (d_k = d_model / h).
      d_model: the width of the residual stream.
      d_ff: the feed-forward hidden width (4·d_model in the paper and GPT-2).
      norm_first: Pre-LN (True) or Post-LN (False).
      activation: the feed-forward's φ, 'gelu', 'gelu_tanh', 'relu' or a function.
      dropout: the drop probability everywhere in the block when ``train=True``.
      causal: mask the future in the self-attention.
    """
    name = "TransformerBlock"
    init, run, attn, ff = _block(name, ("attn",), num_heads, d_model, d_ff, norm_first,
                                 activation, dropout)

    def apply(params: Params, state: State, x: Any, *, mask: Any = None, key=None, train=False):
        calls = {"attn": lambda prm, h, k, train: attn.apply(prm, {}, h, mask=mask, causal=causal,
                                                             key=k, train=train),
                 "ffn": ff}
        return run(params, x, calls, key, train), state

    return leaf(init, apply, "transformer_block", accepts={"mask"})


def DecoderBlock(num_heads: int, d_model: int, d_ff: int, *, norm_first: bool = True,
                 activation: str | Callable = "gelu", dropout: float = 0.0,
                 causal: bool = True) -> Module:
    """A decoder block: causal self-attention, cross-attention to the encoder's output
    (``context``), then a feed-forward network, each a residual sublayer.

        Pre-LN:   x ← x + MHA(LN₁(x)),   x ← x + MHA(LN₂(x), context),   x ← x + FFN(LN₃(x))
        Post-LN:  x ← LN₁(x + MHA(x)),   x ← LN₂(x + MHA(x, context)),   x ← LN₃(x + FFN(x))

    In the cross-attention the queries come from the decoder and the keys and values from the
    context (the course's Q = decoder output, K, V = encoder output). Equal to PyTorch's
    ``TransformerDecoderLayer(..., batch_first=True, norm_first=norm_first)`` given the same
    weights, with ``tgt_is_causal``/a causal ``tgt_mask`` for ``causal=True``.

    ``apply(params, state, x, *, context, mask=None, context_mask=None, key=None, train=False)``:
    ``mask`` (boolean, True = attend) restricts the self-attention beyond the causal mask,
    ``context_mask`` the cross-attention, e.g. ``padding_mask(src_lengths, T_src)`` (B, 1, T_src).

    Shapes: x (B, T, d_model), context (B, T_src, d_model) → (B, T, d_model) (or all unbatched).
    Params: ``self_attn``, ``norm1``, ``cross_attn``, ``norm2``, ``ffn``, ``norm3``.

    Args: as ``TransformerBlock``; ``causal`` defaults to True (a decoder sees no future token).
    """
    name = "DecoderBlock"
    init, run, attn, ff = _block(name, ("self_attn", "cross_attn"), num_heads, d_model, d_ff,
                                 norm_first, activation, dropout)

    def apply(params: Params, state: State, x: Any, *, context: Any = None, mask: Any = None,
              context_mask: Any = None, key=None, train=False):
        if context is None:
            raise ValueError(f"{name}: apply needs context=the encoder's output (B, T_src, "
                             f"d_model={d_model}) for the cross-attention")
        calls = {"self_attn": lambda prm, h, k, train: attn.apply(prm, {}, h, mask=mask,
                                                                  causal=causal, key=k, train=train),
                 "cross_attn": lambda prm, h, k, train: attn.apply(prm, {}, h, context=context,
                                                                   mask=context_mask, key=k,
                                                                   train=train),
                 "ffn": ff}
        return run(params, x, calls, key, train), state

    return leaf(init, apply, "decoder_block", accepts={"context", "mask", "context_mask"})
