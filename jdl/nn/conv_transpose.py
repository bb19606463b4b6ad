"""Transposed convolution ("deconvolution"): the upsampling layer of decoders and U-Nets.

A transposed convolution is the gradient (the adjoint) of a strided convolution with respect to
its input: where ``conv2d`` maps an n×n image to ⌊(n + 2p − k)/s⌋ + 1 outputs, the transposed
one maps those back to (n_in − 1)·s − 2p + k. Written forward, it is an ordinary convolution of
the input with s − 1 zeros inserted between its pixels (``lhs_dilation``), padded by
d(k − 1) − p on each side, with the kernel flipped in space. This is PyTorch's
``conv_transpose2d`` exactly (same padding and ``output_padding`` convention).
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp

from jdl import init as initializers
from jdl.core import Initializer, Module, Params, PRNGKey, State, check_features, check_float, check_rank, leaf, shape_struct
from jdl.nn.conv_arithmetic import effective_kernel, normalize_window


def conv_transpose_output_size(n: int, k: int, stride: int = 1, padding: int = 0,
                               output_padding: int = 0, dilation: int = 1) -> int:
    """n_out = (n − 1)·s − 2p + d(k − 1) + output_padding + 1: the input size of the
    convolution this one transposes (``output_padding`` picks among the sizes that all map to n).

    >>> conv_transpose_output_size(2, 3, stride=2, padding=1, output_padding=1)
    4
    """
    return (n - 1) * stride - 2 * padding + effective_kernel(k, dilation) + output_padding


def _pads(name: str, padding: Any, output_padding: Any, kernel: Sequence[int], stride: Sequence[int],
          dilation: Sequence[int]) -> tuple[tuple[int, int], ...]:
    n = len(kernel)
    if isinstance(padding, str):
        if padding.upper() != "VALID":
            raise ValueError(f"{name}: padding must be 'VALID', an int or one int per axis, got {padding!r}")
        padding = 0
    p = normalize_window(name, "padding", padding, n, minimum=0)
    op = normalize_window(name, "output_padding", output_padding, n, minimum=0)
    pads = []
    for k, s, d, pi, oi in zip(kernel, stride, dilation, p, op):
        span = effective_kernel(k, d)
        if pi > span - 1:
            raise ValueError(f"{name}: padding {pi} exceeds d(k − 1) = {span - 1} (kernel {k}, dilation {d})")
        if oi >= max(s, d):
            raise ValueError(f"{name}: output_padding {oi} must be smaller than the stride {s} or the dilation {d}")
        pads.append((span - 1 - pi, span - 1 - pi + oi))
    return tuple(pads)


def conv_transpose2d(x: jax.Array, w: jax.Array, b: jax.Array | None = None,
                     stride: int | Sequence[int] = 1, padding: int | Sequence[int] | str = 0,
                     output_padding: int | Sequence[int] = 0,
                     dilation: int | Sequence[int] = 1) -> jax.Array:
    """Transposed 2-D convolution, NHWC input and HWIO kernel (I = the input's channels):

        y = conv2d(dilate_s(x), flip_hw(w), padding = d(k − 1) − p (+ output_padding after)) + b

    where dilate_s puts s − 1 zeros between neighbouring pixels. Each input pixel scatters a
    copy of the kernel scaled by its value into the output, s pixels apart.

    Shapes: x (B, H, W, C_in), w (k_h, k_w, C_in, C_out), b (C_out,) →
    (B, H', W', C_out) with H' = (H − 1)s − 2p + d(k − 1) + output_padding + 1.
    PyTorch's weight (C_in, C_out, k_h, k_w) is ``w.transpose(2, 3, 0, 1)`` of it.
    """
    check_rank("conv_transpose2d", x, (4,), "B, H, W, C")
    if w.ndim != 4:
        raise ValueError(f"conv_transpose2d: expected a kernel (k_h, k_w, C_in, C_out), got shape {tuple(w.shape)}")
    check_features("conv_transpose2d", x, w.shape[2], what="C_in")
    stride = normalize_window("conv_transpose2d", "stride", stride, 2)
    dilation = normalize_window("conv_transpose2d", "dilation", dilation, 2)
    pads = _pads("conv_transpose2d", padding, output_padding, w.shape[:2], stride, dilation)
    y = jax.lax.conv_general_dilated(
        x, jnp.flip(w, axis=(0, 1)), window_strides=(1, 1), padding=pads, lhs_dilation=stride,
        rhs_dilation=dilation, dimension_numbers=("NHWC", "HWIO", "NHWC"))
    if b is not None:
        y = y + b.reshape(1, 1, 1, -1)  # (B, H', W', C_out) + (1, 1, 1, C_out)
    return y


def ConvTranspose2D(d_out: int, kernel_size: int | Sequence[int], stride: int | Sequence[int] = 1,
                    padding: int | Sequence[int] | str = 0, output_padding: int | Sequence[int] = 0,
                    use_bias: bool = True, w_init: Initializer = initializers.lecun_normal,
                    b_init: Initializer = initializers.zeros) -> Module:
    """A transposed-convolution layer: y = conv_transpose2d(x, w, stride, padding) + b.

    ``ConvTranspose2D(c, 4, stride=2, padding=1)`` doubles H and W (a decoder's upsampling
    step); ``kernel_size=3, stride=2, padding=1, output_padding=1`` does too.

    Shapes: x (B, H, W, C_in) → (B, (H − 1)s − 2p + k + output_padding, …, d_out).
    Params: ``w`` (k_h, k_w, C_in, d_out), ``b`` (d_out,).
    """
    if not isinstance(d_out, int) or d_out < 1:
        raise ValueError(f"ConvTranspose2D: d_out must be a positive int, got {d_out!r}")
    window = normalize_window("ConvTranspose2D", "kernel_size", kernel_size, 2)
    stride = normalize_window("ConvTranspose2D", "stride", stride, 2)
    _pads("ConvTranspose2D", padding, output_padding, window, stride, (1, 1))

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        x = shape_struct(x)
        check_float("ConvTranspose2D", x)
        check_rank("ConvTranspose2D", x, (4,), "B, H, W, C")
        kw, kb = jax.random.split(key)
        params = {"w": w_init(kw, (*window, x.shape[-1], d_out), x.dtype)}
        if use_bias:
            params["b"] = b_init(kb, (d_out,), x.dtype)
        return params, {}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False):
        del key, train
        return conv_transpose2d(x, params["w"], params.get("b"), stride, padding, output_padding), state

    return leaf(init, apply, "conv_transpose2d")
