"""Noise-prediction networks ε_θ(x_t, t) for diffusion: a sinusoidal embedding of the step t
(the Transformer's position encoding, applied to time) fed into every hidden layer."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jdl.core import Module, Params, PRNGKey, State, check_float, check_rank, leaf, shape_struct
from jdl.nn.activations import gelu
from jdl.nn.linear import Dense, dense
from jdl.nn.positions import sinusoidal_positions


def time_embedding(t: jax.Array, d: int, T: int) -> jax.Array:
    """The sinusoidal encoding of integer steps t, as for positions p in the Transformer:

        e(t)_{2i} = sin(t·ω_i),  e(t)_{2i+1} = cos(t·ω_i),  ω_i = 10000^{−2i/d}

    looked up in a (T + 1, d) table (``jdl.nn.sinusoidal_positions``).

    Shapes: t (B,) int in 0 … T → (B, d).
    """
    return sinusoidal_positions(T + 1, d)[t]


def TimeMLP(d_out: int, T: int, hidden: int = 128, n_layers: int = 3, d_time: int = 32) -> Module:
    """An MLP noise predictor for points (2-D toy sets, flattened images):

        e = W_e2·φ(W_e1·time_embedding(t) + b_e1) + b_e2           (shared time features)
        h_0 = x,   h_l = φ(h_{l−1} W_l + b_l + e W_l^t),  l = 1 … n_layers
        ε̂ = h_L W_out + b_out

    with φ = GELU: each hidden layer receives its own linear projection of the time features.
    ``apply(params, state, x, *, t)`` takes the steps t as a keyword (an extra input).

    Shapes: x (B, D), t (B,) int in 1 … T → ε̂ (B, d_out).
    Params: ``time_1``, ``time_2`` (the time MLP), ``l{i}`` and ``l{i}_t`` for each hidden
    layer, ``out``; each a Dense ``{w, b}``.

    Args:
      d_out: output size (D for ε-prediction). T: the number of diffusion steps (embedding table).
      hidden: width of every hidden layer. n_layers: number of hidden layers. d_time: embedding size.
    """
    for name, value in (("d_out", d_out), ("T", T), ("hidden", hidden), ("n_layers", n_layers), ("d_time", d_time)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"TimeMLP: {name} must be a positive int, got {value!r}")

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        x = shape_struct(x)
        check_float("TimeMLP", x)
        check_rank("TimeMLP", x, (2,), "B, D")
        keys = iter(jax.random.split(key, 3 + 2 * n_layers))
        f = jax.ShapeDtypeStruct((1, d_time), x.dtype)
        h = jax.ShapeDtypeStruct((1, hidden), x.dtype)
        params = {"time_1": Dense(hidden).init(next(keys), f)[0], "time_2": Dense(hidden).init(next(keys), h)[0]}
        d_in = x.shape[1]
        for i in range(n_layers):
            params[f"l{i}"] = Dense(hidden).init(next(keys), jax.ShapeDtypeStruct((1, d_in), x.dtype))[0]
            params[f"l{i}_t"] = Dense(hidden, use_bias=False).init(next(keys), h)[0]
            d_in = hidden
        params["out"] = Dense(d_out).init(next(keys), h)[0]
        return params, {}

    def apply(params: Params, state: State, x: Any, *, t: Any = None, key=None, train=False):
        del key, train
        check_rank("TimeMLP", x, (2,), "B, D")
        if t is None:
            raise TypeError("TimeMLP: apply needs the diffusion steps, apply(params, state, x, t=t) with t (B,)")
        if jnp.shape(t) != x.shape[:1]:
            raise ValueError(f"TimeMLP: t must have shape (B,) = {x.shape[:1]}, got {jnp.shape(t)}")
        e = dense(params["time_2"], gelu(dense(params["time_1"], time_embedding(t, d_time, T))))  # (B, hidden)
        h = x
        for i in range(n_layers):
            h = gelu(dense(params[f"l{i}"], h) + dense(params[f"l{i}_t"], e))  # (B, hidden)
        return dense(params["out"], h), state

    return leaf(init, apply, "time_mlp", accepts={"t"})


def eps_fn(model: Module, params: Params, state: State | None = None):
    """``eps_fn(x, t) = model.apply(params, state, x, t=t)[0]``: a noise predictor with its
    params, as the function the loss and the samplers of ``jdl.models.diffusion`` take.

    Shapes: x (B, ...), t (B,) → ε̂ (B, ...), as the model maps them.
    """
    state = {} if state is None else state

    def fn(x: jax.Array, t: jax.Array) -> jax.Array:
        return model.apply(params, state, x, t=t)[0]

    return fn
