"""Prompts of random linear functions for in-context learning (Garg et al., 2022).

Each prompt draws one function f(x) = wᵀx with w ~ N(0, I_d) and n points x_i ~ N(0, I_d),
and lists them as a sequence (x_1, f(x_1), x_2, f(x_2), …, x_n, f(x_n)). A model that reads the
sequence left to right and predicts f(x_i) at the position of x_i has seen i − 1 examples of
f by then: one sequence scores the model at every number of in-context examples 0..n−1.

The draws are ``jax.random`` (jit-able, on any device), so a training loop can draw a fresh
batch of functions at every step instead of storing a data set.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def linear_function_prompts(key: jax.Array, batch: int, n_points: int, d: int,
                            d_active: Any = None) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Draw ``batch`` functions and ``n_points`` inputs each: y_i = wᵀx_i,
    w ~ N(0, I_d), x_i ~ N(0, I_d) with the coordinates from ``d_active`` on set to 0 (Garg et
    al.'s curriculum on the dimension; None: all d active). ``d_active`` may be traced.

    Shapes: → xs (batch, n_points, d), ys (batch, n_points), w (batch, d), float32.
    """
    for name, value in (("batch", batch), ("n_points", n_points), ("d", d)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"linear_function_prompts: {name} must be a positive int, got {value!r}")
    k_x, k_w = jax.random.split(key)
    xs = jax.random.normal(k_x, (batch, n_points, d))  # (B, n, d)
    if d_active is not None:
        xs = xs * (jnp.arange(d) < d_active).astype(xs.dtype)[None, None, :]  # (B, n, d)
    w = jax.random.normal(k_w, (batch, d))  # (B, d)
    ys = jnp.einsum("bnd,bd->bn", xs, w)  # (B, n): y_i = wᵀx_i
    return xs, ys, w


def interleave(xs: jax.Array, ys: jax.Array) -> jax.Array:
    """The prompt as one sequence of 2n vectors of d + 1 features:
    z_{2i} = (x_i, 0) and z_{2i+1} = (0, …, 0, y_i), so x- and y-positions are told apart by
    which features are used. The prediction of y_i is read at position 2i (the x_i token).

    Shapes: xs (B, n, d), ys (B, n) → z (B, 2n, d + 1).

    >>> z = interleave(jnp.ones((1, 2, 2)), jnp.array([[5.0, 7.0]]))
    >>> z[0].tolist()
    [[1.0, 1.0, 0.0], [0.0, 0.0, 5.0], [1.0, 1.0, 0.0], [0.0, 0.0, 7.0]]
    """
    if xs.ndim != 3 or ys.shape != xs.shape[:2]:
        raise ValueError(f"interleave: expected xs (B, n, d) and ys (B, n), got {tuple(xs.shape)} "
                         f"and {tuple(ys.shape)}")
    B, n, d = xs.shape
    x_tok = jnp.concatenate([xs, jnp.zeros((B, n, 1), xs.dtype)], axis=-1)  # (B, n, d + 1)
    y_tok = jnp.concatenate([jnp.zeros((B, n, d), xs.dtype), ys[..., None].astype(xs.dtype)], axis=-1)
    return jnp.stack([x_tok, y_tok], axis=2).reshape(B, 2 * n, d + 1)  # (B, n, 2, d+1) → (B, 2n, d+1)
