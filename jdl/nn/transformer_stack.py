"""Stacks of Transformer blocks: the encoder (N self-attention blocks) and the decoder
(N blocks with causal self-attention and cross-attention to the encoder's output)."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from jdl.core import Module, Params, PRNGKey, State, check_keywords, fold_in, shape_struct
from jdl.nn.combinators import keywords_for, repeat, serial
from jdl.nn.norm import LayerNorm
from jdl.nn.transformer import DecoderBlock, TransformerBlock


def _stack(name: str, block: Module, num_layers: int, final_norm: bool, scan: bool) -> Module:
    """``num_layers`` copies of ``block`` (``serial``, or ``repeat`` under ``lax.scan`` when
    ``scan``), then a LayerNorm when ``final_norm``. Params: ``layers``, and ``norm``."""
    if not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"{name}: num_layers must be a positive int, got {num_layers!r}")
    layers = repeat(block, num_layers) if scan else serial(*[block] * num_layers)
    norm = LayerNorm()
    children = (layers, norm) if final_norm else (layers,)

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        # Each block keeps x's shape, so every copy is initialized on x itself, with the keys and
        # the layout serial/repeat use: their own init would run a DecoderBlock without context.
        x = shape_struct(x)
        k = jax.random.fold_in(key, 0)
        if scan:
            keys = jax.vmap(lambda i: jax.random.fold_in(k, i))(jnp.arange(num_layers))
            stacked = jax.vmap(lambda k: block.init(k, x)[0])(keys)  # leaves (N, ...)
        else:
            stacked = {f"{i}_{block.name}": block.init(jax.random.fold_in(k, i), x)[0]
                       for i in range(num_layers)}
        params = {"layers": stacked}
        if final_norm:
            params["norm"] = norm.init(jax.random.fold_in(key, 1), x)[0]
        return params, {}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False, **extra):
        check_keywords(name, extra, block.accepts)
        y, _ = layers.apply(params["layers"], {}, x, key=fold_in(key, 0), train=train,
                            **keywords_for(layers, extra))
        if final_norm:
            y, _ = norm.apply(params["norm"], {}, y)
        return y, state

    short = {"TransformerEncoder": "transformer_encoder", "TransformerDecoder": "transformer_decoder"}
    return Module(init, apply, short.get(name, name.lower()), children, block.accepts)


def TransformerEncoder(num_layers: int, num_heads: int, d_model: int, d_ff: int, *,
                       norm_first: bool = True, activation: str | Callable = "gelu",
                       dropout: float = 0.0, scan: bool = False) -> Module:
    """The Transformer encoder: N ``TransformerBlock`` s, z = Block_N(… Block_1(x)), and with
    Pre-LN a final LayerNorm, z ← LN(z) (the course's Pre-LN sheet, GPT-2's ``ln_f``); a
    Post-LN stack already ends in a LayerNorm and gets none.

    PyTorch's ``nn.Transformer`` puts a final LayerNorm after its Post-LN encoder too; build that
    with ``serial(TransformerEncoder(..., norm_first=False), LayerNorm())``. Equal to
    ``nn.TransformerEncoder(layer, N, norm=LayerNorm(d_model) if norm_first else None)``.

    ``apply(params, state, x, *, mask=None, key=None, train=False)``, ``mask`` as
    ``TransformerBlock`` takes it, the same for every block.

    Shapes: x (B, T, d_model) → (B, T, d_model). Params: ``layers`` ({'0_transformer_block': …,
    '1_transformer_block': …}, or with ``scan`` one block's params stacked on a leading axis of
    N), ``norm`` ({gamma, beta}, Pre-LN only).

    Args:
      num_layers: N.
      num_heads, d_model, d_ff, norm_first, activation, dropout: each block's
        (``TransformerBlock``).
      scan: stack the blocks with ``repeat`` (``lax.scan``: compile time flat in N) instead of
        a Python loop (``serial``).
    """
    block = TransformerBlock(num_heads, d_model, d_ff, norm_first=norm_first,
                             activation=activation, dropout=dropout)
    return _stack("TransformerEncoder", block, num_layers, norm_first, scan)


def TransformerDecoder(num_layers: int, num_heads: int, d_model: int, d_ff: int, *,
                       norm_first: bool = True, activation: str | Callable = "gelu",
                       dropout: float = 0.0, scan: bool = False) -> Module:
    """The Transformer decoder: N ``DecoderBlock`` s, each with causal self-attention and
    cross-attention to the encoder's output, and with Pre-LN a final LayerNorm.

    ``apply(params, state, x, *, context, mask=None, context_mask=None, key=None,
    train=False)``: every block attends to the same ``context`` (the encoder's output z).
    Equal to ``nn.TransformerDecoder(layer, N, norm=LayerNorm(d_model) if norm_first else
    None)`` called with a causal ``tgt_mask``.

    Shapes: x (B, T, d_model), context (B, T_src, d_model) → (B, T, d_model). Params:
    ``layers``, ``norm`` (Pre-LN only), as ``TransformerEncoder``.

    Args: as ``TransformerEncoder``.
    """
    block = DecoderBlock(num_heads, d_model, d_ff, norm_first=norm_first, activation=activation,
                         dropout=dropout)
    return _stack("TransformerDecoder", block, num_layers, norm_first, scan)
