"""A GPT that reads and writes real-valued vectors instead of token ids (Garg et al., 2022:
"What can Transformers learn in-context?", GPT-2 with a linear read-in and read-out).

    h_0 = z_t W_in + b_in + W_pe[t]                             linear read-in + learned position
    h_N = the N Pre-LN causal blocks of ``jdl.models.gpt`` on h_0
    ŷ_t = LN_f(h_N) W_out + b_out                               linear read-out

Everything between the read-in and the read-out is ``jdl.models.gpt``'s: the same blocks
(``block_stack``), the same final LayerNorm, the same initialization. Only the token table
W_te is replaced by a Dense read-in and the tied head by a Dense read-out, so ``config.vocab_size``
and ``config.tied_head`` are not used (pass ``vocab_size=1``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jdl.core import Module, Params, PRNGKey, State, check_key, fold_in, leaf, shape_struct
from jdl.models.gpt import GPTConfig, block_stack, layer_norm
from jdl.nn.dropout import dropout as dropout_fn
from jdl.nn.embedding import embed
from jdl.nn.linear import dense


def _check_input(name: str, x: Any, d_in: int, context: int) -> None:
    if x.ndim != 3 or x.shape[-1] != d_in:
        raise ValueError(f"{name}: expected vectors of shape (B, T, d_in) with d_in={d_in}, "
                         f"got {tuple(x.shape)}")
    if x.shape[1] > context:
        raise ValueError(f"{name}: {x.shape[1]} positions exceed the context of {context}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name}: expected floating-point vectors, got dtype {x.dtype}")


def vector_gpt(config: GPTConfig, d_in: int, d_out: int) -> Module:
    """A causal GPT on sequences of vectors: z (B, T, d_in) → ŷ (B, T, d_out), where ŷ_t
    depends on z_0..z_t only.

    Params: ``read_in`` {w (d_in, C), b (C,)}, ``wpe`` {w (context, C)}, ``blocks`` (as
    ``gpt``), ``ln_f`` {gamma, beta}, ``read_out`` {w (C, d_out), b (d_out,)}; weights
    N(0, 0.02²) as GPT-2, biases zero. ``apply(..., key=k, train=True)`` applies dropout.

    Shapes: z (B, T, d_in) float with T ≤ context → (B, T, d_out).

    >>> import jax, jax.numpy as jnp
    >>> cfg = GPTConfig(vocab_size=1, context=8, num_layers=1, d_model=16, num_heads=2)
    >>> m = vector_gpt(cfg, d_in=3, d_out=1)
    >>> p, s = m.init(jax.random.key(0), jnp.zeros((1, 8, 3)))
    >>> m.apply(p, s, jnp.zeros((2, 5, 3)))[0].shape
    (2, 5, 1)
    """
    if not isinstance(config, GPTConfig):
        raise TypeError(f"vector_gpt: expected a GPTConfig, got {type(config).__name__}")
    for name, value in (("d_in", d_in), ("d_out", d_out)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"vector_gpt: {name} must be a positive int, got {value!r}")
    stack = block_stack(config)
    C = config.d_model

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        _check_input("vector_gpt", shape_struct(x), d_in, config.context)
        k_in, k_pe, k_blocks, k_out = jax.random.split(key, 4)
        params = {"read_in": {"w": 0.02 * jax.random.normal(k_in, (d_in, C)), "b": jnp.zeros((C,))},
                  "wpe": {"w": 0.02 * jax.random.normal(k_pe, (config.context, C))}}
        params["blocks"], _ = stack.init(k_blocks, jax.ShapeDtypeStruct((1, 1, C), jnp.float32))
        params["ln_f"] = {"gamma": jnp.ones((C,)), "beta": jnp.zeros((C,))}
        params["read_out"] = {"w": 0.02 * jax.random.normal(k_out, (C, d_out)), "b": jnp.zeros((d_out,))}
        return params, {}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False):
        z = jnp.asarray(x)
        _check_input("vector_gpt", z, d_in, config.context)
        p_drop = config.dropout if train else 0.0
        if p_drop:
            check_key("vector_gpt", key, train)
        h = dense(params["read_in"], z) + embed(params["wpe"], jnp.arange(z.shape[1]))[None]  # (B, T, C)
        if p_drop:
            h = dropout_fn(jax.random.fold_in(key, 0), h, p_drop)
        h, _ = stack.apply(params["blocks"], {}, h, key=fold_in(key, 1), train=train)  # (B, T, C)
        h = layer_norm(params["ln_f"], h, config.layer_norm_eps)  # (B, T, C)
        return dense(params["read_out"], h), state  # (B, T, d_out)

    return leaf(init, apply, "vector_gpt")
