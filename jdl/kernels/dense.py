"""A Dense layer whose weight gradient XLA:CPU computes as a plain matmul: ``jdl.nn.dense``'s
y = x W + b, with the input transposed once, in memory, for the backward pass.

The weight gradient of y = X W is ∂L/∂W = Xᵀ·∂L/∂Y, X of shape (N, d_in) with N = B·T tokens.
Autodiff hands XLA this product as a dot that contracts the *first* axis of both operands; on
XLA:CPU such a dot is not given to YNNPACK (whose kernels take a row-major left operand
contracted on its last axis) and runs in a slower general kernel. Here the tangent of the
matmul in W is written as (Xᵀ)ᵀ·Ẇ with Xᵀ materialized behind an ``optimization_barrier``
(so that XLA cannot fold the transpose back into the dot); its transpose — the weight
gradient — is then Xᵀ·∂L/∂Y with Xᵀ a (d_in, N) row-major array: a plain matmul. The values
are the same products (summed in another order, so equal to rounding); forward mode is kept,
the rule being a JVP. Measured in benchmarks/NOTES.md ("GPT").
"""

from __future__ import annotations

import math

import jax

from jdl.core import Params


@jax.custom_jvp
def matmul_xt(x: jax.Array, w: jax.Array) -> jax.Array:
    """Y = X W with the JVP Ẏ = Ẋ W + (Xᵀ)ᵀ Ẇ, Xᵀ materialized (the module docstring says why).

    Shapes: x (N, d_in), w (d_in, d_out) → (N, d_out).
    """
    return x @ w


@matmul_xt.defjvp
def _matmul_xt_jvp(primals, tangents):
    x, w = primals
    dx, dw = tangents
    x_t = jax.lax.optimization_barrier(x.T)  # (d_in, N), a row-major copy of Xᵀ
    return x @ w, dx @ w + x_t.T @ dw


def dense_xt(params: Params, x: jax.Array) -> jax.Array:
    """y = x @ w + b, as ``jdl.nn.dense``, with the weight gradient a plain matmul of a
    materialized xᵀ (``matmul_xt``). Inputs of rank > 2 are flattened to (B·T, d_in).

    Shapes: x (..., d_in), w (d_in, d_out), b (d_out,) → y (..., d_out).
    """
    w = params["w"]
    lead = x.shape[:-1]
    x2 = x.reshape(math.prod(lead), x.shape[-1])  # (N, d_in)
    y = matmul_xt(x2, w)  # (N, d_out)
    if "b" in params:
        y = y + params["b"][None, :]  # (N, d_out) + (1, d_out)
    return y.reshape(*lead, w.shape[1])
