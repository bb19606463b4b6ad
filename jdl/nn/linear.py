"""Dense (fully connected) and Flatten layers."""

from __future__ import annotations

import math
from typing import Any

import jax

from jdl import init as initializers
from jdl.core import Initializer, Module, Params, PRNGKey, State, check_features, check_float, leaf, shape_struct


def dense(params: Params, x: jax.Array) -> jax.Array:
    """y = x @ w + b (the course's Wx + b with w stored transposed, as in flax and XLA).

    Inputs of rank > 2 are flattened to 2-D around the matmul, (B, T, C) → (B·T, C): XLA:CPU's
    backward pass is several times faster on 2-D operands than on 3-D ones.

    Shapes: x (..., d_in), w (d_in, d_out), b (d_out,) → y (..., d_out).
    """
    w = params["w"]
    lead = x.shape[:-1]
    x2 = x.reshape(math.prod(lead), x.shape[-1]) if x.ndim != 2 else x  # (N, d_in)
    y = x2 @ w  # (N, d_out)
    if "b" in params:
        y = y + params["b"][None, :]  # (N, d_out) + (1, d_out)
    return y.reshape(*lead, w.shape[1]) if x.ndim != 2 else y


def Dense(
    d_out: int,
    use_bias: bool = True,
    w_init: Initializer = initializers.lecun_normal,
    b_init: Initializer = initializers.zeros,
) -> Module:
    """A fully connected layer: y = x @ w + b.

    The course writes z = Wx + b with W of shape (d_out, d_in) acting on a column x; jdl keeps a
    batch of row vectors, so ``w`` is that W transposed, of shape (d_in, d_out).
    It has d_in·d_out + d_out parameters (d_in·d_out without the bias).

    Shapes: x (..., d_in) → y (..., d_out). Params: ``w`` (d_in, d_out), ``b`` (d_out,).

    Args:
      d_out: number of output features.
      use_bias: add the bias ``b``; a layer followed by BatchNorm does not need one.
      w_init, b_init: initializers ``(key, shape, dtype) -> array`` (``jdl.init``); the default
        weights are LeCun normal, as in flax.
    """
    if not isinstance(d_out, int) or d_out < 1:
        raise ValueError(f"Dense: d_out must be a positive int, got {d_out!r}")

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        x = shape_struct(x)
        if x.ndim < 1:
            raise ValueError("Dense: expected an input of shape (..., d_in), got a scalar")
        check_float("Dense", x)
        kw, kb = jax.random.split(key)
        params = {"w": w_init(kw, (x.shape[-1], d_out), x.dtype)}
        if use_bias:
            params["b"] = b_init(kb, (d_out,), x.dtype)
        return params, {}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False):
        del key, train
        check_features("Dense", x, params["w"].shape[0])
        return dense(params, x), state

    return leaf(init, apply, "dense")


def Flatten() -> Module:
    """Flatten every axis but the batch: (B, d_1, …, d_k) → (B, d_1·…·d_k)."""

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        del key
        if shape_struct(x).ndim < 1:
            raise ValueError("Flatten: expected an input with a batch axis, got a scalar")
        return {}, {}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False):
        del params, key, train
        return x.reshape(x.shape[0], -1), state

    return leaf(init, apply, "flatten")
