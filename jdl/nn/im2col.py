"""Convolution from scratch as im2col followed by one matrix product.

im2col ("image to columns") scans every k_h×k_w patch the kernel visits and flattens it into
one column of a matrix; a patch of C channels gives a column of k_h·k_w·C numbers. The
convolution of all filters at all positions is then a single matrix product

    Y = W_row · X_col,   W_row (C_out, k_h·k_w·C),  X_col (k_h·k_w·C, B·H'·W')

which is how early GPU libraries ran convolutions on fast matrix-multiply routines. It uses
k_h·k_w times the input's memory, which is why XLA's ``conv2d`` does not do it this way; the
tests prove the two equal.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp

from jdl.nn.conv import conv_geometry
from jdl.nn.conv_arithmetic import Padding


def im2col(x: jax.Array, kernel_size: Sequence[int], stride: Any = 1, padding: Padding = "VALID",
           dilation: Any = 1) -> jax.Array:
    """The patches of ``x`` as columns: column (n, i, j) holds the k_h·k_w·C values the kernel
    sees at output position (i, j) of image n, in (a, b, c) order (kernel row, kernel column,
    channel) — the order of a HWIO kernel flattened to (k_h·k_w·C, C_out).

        X_col[(a·k_w + b)·C + c, (n·H' + i)·W' + j] = x_pad[n, s_h·i + d_h·a, s_w·j + d_w·b, c]

    Shapes: x (B, H, W, C) → (k_h·k_w·C, B·H'·W').
    """
    k_h, k_w = kernel_size
    c = x.shape[-1]
    stride, pads, dilation, (h_out, w_out) = conv_geometry(
        "im2col", x.shape, (k_h, k_w, c, 1), stride, padding, dilation, 1)
    x_pad = jnp.pad(x, ((0, 0), *pads, (0, 0)))  # (B, H + lo + hi, W + lo + hi, C)
    rows = []
    for a in range(k_h):
        for b in range(k_w):
            top, left = dilation[0] * a, dilation[1] * b
            # every output position's (a, b) pixel, at once: a strided slice
            patch = x_pad[:, top: top + stride[0] * (h_out - 1) + 1: stride[0],
                             left: left + stride[1] * (w_out - 1) + 1: stride[1], :]  # (B, H', W', C)
            rows.append(patch)
    cols = jnp.stack(rows, axis=3)  # (B, H', W', k_h·k_w, C)
    cols = cols.reshape(x.shape[0] * h_out * w_out, k_h * k_w * c)  # (B·H'·W', k_h·k_w·C)
    return cols.T  # (k_h·k_w·C, B·H'·W')


def conv2d_im2col(x: jax.Array, w: jax.Array, b: jax.Array | None = None, stride: Any = 1,
                  padding: Padding = "VALID", dilation: Any = 1, groups: int = 1) -> jax.Array:
    """``jdl.nn.conv2d`` written from scratch: Y = W_row · im2col(x) (+ b), one matrix product
    per group.

    Shapes: x (B, H, W, C_in), w (k_h, k_w, C_in/groups, C_out), b (C_out,) → (B, H', W', C_out).
    """
    stride, pads, dilation, (h_out, w_out) = conv_geometry(
        "conv2d_im2col", x.shape, w.shape, stride, padding, dilation, groups)
    k_h, k_w, c_g, c_out = w.shape
    o_g = c_out // groups
    ys = []
    for g in range(groups):
        x_col = im2col(x[..., g * c_g:(g + 1) * c_g], (k_h, k_w), stride, pads, dilation)  # (k_h·k_w·c_g, B·H'·W')
        w_row = w[..., g * o_g:(g + 1) * o_g].reshape(k_h * k_w * c_g, o_g).T  # (o_g, k_h·k_w·c_g)
        ys.append(w_row @ x_col)  # (o_g, B·H'·W')
    y = jnp.concatenate(ys, axis=0)  # (C_out, B·H'·W')
    y = y.T.reshape(x.shape[0], h_out, w_out, c_out)  # (B, H', W', C_out)
    if b is not None:
        y = y + b.reshape(1, 1, 1, -1)
    return y
