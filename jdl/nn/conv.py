"""Convolution on XLA: ``conv2d``/``conv1d`` and transposed convolution, and their modules.

Layouts follow XLA and flax: inputs are channels-last (NHWC for images, NWC for sequences) and
kernels are HWIO (WIO in 1-D). The slides use PyTorch's N×C×H×W and O×I×H×W; convert with
``x.transpose(0, 2, 3, 1)`` and ``w.transpose(2, 3, 1, 0)``.

Like every deep-learning library, "convolution" here is the cross-correlation the course
writes as H_{i,j,o} = Σ_{a,b} Σ_c W_{a,b,c,o} · X_{s·i + d·a, s·j + d·b, c} + b_o (the kernel
is not flipped). ``jdl.nn.conv2d_im2col`` computes the same thing from scratch.

This file holds only that definition. Faster formulations for particular backends and shapes
live in ``jdl.kernels.conv`` and are chosen explicitly, with ``Conv2D(..., impl='auto')``.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Sequence

import jax
import jax.numpy as jnp

from jdl import init as initializers
from jdl.core import Initializer, Module, Params, PRNGKey, State, check_float, leaf, shape_struct
from jdl.nn.conv_arithmetic import Padding, check_conv_sizes, normalize_padding, normalize_window

_LAYOUTS = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}
_AXES = {1: "B, W, C", 2: "B, H, W, C"}


def conv_geometry(name: str, x_shape: Sequence[int], w_shape: Sequence[int], stride: Any,
                  padding: Padding, dilation: Any, groups: int) -> tuple:
    """Check a convolution's shapes and return (stride, pads, dilation, output sizes).

    Raises ``ValueError`` naming the layer when the ranks, channels, groups, stride or kernel
    size do not fit, with the conv arithmetic spelled out.
    """
    n = len(w_shape) - 2
    if n not in _LAYOUTS:
        raise ValueError(f"{name}: expected a kernel of rank 3 (W, I, O) or 4 (H, W, I, O), got {tuple(w_shape)}")
    if len(x_shape) != n + 2:
        raise ValueError(f"{name}: expected an input of rank {n + 2} ({_AXES[n]}), got shape {tuple(x_shape)}")
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{name}: groups must be a positive int, got {groups!r}")
    c_in, (ci_w, c_out) = x_shape[-1], w_shape[-2:]
    if c_in != ci_w * groups:
        raise ValueError(
            f"{name}: input of shape {tuple(x_shape)} has C_in={c_in} channels but the kernel "
            f"{tuple(w_shape)} expects C_in = {ci_w}·groups = {ci_w * groups} (groups={groups})")
    if c_out % groups:
        raise ValueError(f"{name}: C_out={c_out} is not divisible by groups={groups}")
    kernel = tuple(w_shape[:n])
    strides = (stride,) * n if isinstance(stride, int) else tuple(stride)
    if any(isinstance(s, int) and s < 1 for s in strides):
        raise ValueError(
            f"{name}: stride must be at least 1, got {stride!r}: n_out = ⌊(n + 2p − k)/s⌋ + 1 "
            f"needs s ≥ 1 (input {tuple(x_shape[1:-1])}, kernel {kernel}, padding {padding!r})")
    stride = normalize_window(name, "stride", stride, n)
    dilation = normalize_window(name, "dilation", dilation, n)
    pads = normalize_padding(name, padding, x_shape[1:-1], kernel, stride, dilation)
    out = check_conv_sizes(name, x_shape[1:-1], kernel, stride, pads, dilation)
    return stride, pads, dilation, out


def conv(x: jax.Array, w: jax.Array, b: jax.Array | None = None, stride: int | Sequence[int] = 1,
         padding: Padding = "VALID", dilation: int | Sequence[int] = 1, groups: int = 1,
         name: str = "conv") -> jax.Array:
    """N-d convolution (N = 1 or 2) on ``lax.conv_general_dilated``; see :func:`conv2d`."""
    stride, pads, dilation, _ = conv_geometry(name, x.shape, w.shape, stride, padding, dilation, groups)
    y = jax.lax.conv_general_dilated(
        x, w, window_strides=stride, padding=pads, rhs_dilation=dilation,
        dimension_numbers=_LAYOUTS[w.ndim - 2], feature_group_count=groups)
    return add_bias(y, b)


def add_bias(y: jax.Array, b: jax.Array | None) -> jax.Array:
    """y + b over the last (channel) axis: (B, ..., C_out) + (C_out,); ``b=None`` adds nothing."""
    return y if b is None else y + b.reshape((1,) * (y.ndim - 1) + (-1,))


def conv2d(x: jax.Array, w: jax.Array, b: jax.Array | None = None, stride: int | Sequence[int] = 1,
           padding: Padding = "VALID", dilation: int | Sequence[int] = 1, groups: int = 1) -> jax.Array:
    """2-D convolution (cross-correlation), NHWC input and HWIO kernel:

        y[n, i, j, o] = Σ_{a<k_h} Σ_{b<k_w} Σ_{c<C_in/g} x_pad[n, s_h·i + d_h·a, s_w·j + d_w·b, g(o)·C_in/g + c]
                        · w[a, b, c, o] + b[o]

    where ``x_pad`` is x with the zeros of ``padding`` around it and g(o) the group of output
    channel o. Output size per axis: ⌊(n + lo + hi − d(k − 1) − 1)/s⌋ + 1
    (``jdl.nn.conv_output_size``).

    Shapes: x (B, H, W, C_in), w (k_h, k_w, C_in/groups, C_out), b (C_out,) → (B, H', W', C_out).

    Args:
      padding: 'VALID' (none), 'SAME' (output ⌈n/s⌉), an int p (p zeros on each side), one int
        per axis, or explicit pairs ((lo_h, hi_h), (lo_w, hi_w)).
      stride, dilation: an int or one per axis (≥ 1).
      groups: split the channels into ``groups`` independent convolutions (``groups = C_in``
        is a depthwise convolution).

    >>> x = jnp.arange(9.0).reshape(1, 3, 3, 1); w = jnp.arange(4.0).reshape(2, 2, 1, 1)
    >>> conv2d(x, w)[0, :, :, 0].tolist()
    [[19.0, 25.0], [37.0, 43.0]]
    """
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv2d: expected x (B, H, W, C) and w (k_h, k_w, C_in, C_out), got shapes "
                         f"{tuple(x.shape)} and {tuple(w.shape)}")
    return conv(x, w, b, stride, padding, dilation, groups, "conv2d")


def conv1d(x: jax.Array, w: jax.Array, b: jax.Array | None = None, stride: int = 1,
           padding: Padding = "VALID", dilation: int = 1, groups: int = 1) -> jax.Array:
    """1-D convolution, NWC input and WIO kernel:
    y[n, i, o] = Σ_a Σ_c x_pad[n, s·i + d·a, c] · w[a, c, o] + b[o].

    Shapes: x (B, L, C_in), w (k, C_in/groups, C_out), b (C_out,) → (B, L', C_out) with
    L' = ⌊(L + lo + hi − d(k − 1) − 1)/s⌋ + 1.
    """
    if x.ndim != 3 or w.ndim != 3:
        raise ValueError(f"conv1d: expected x (B, L, C) and w (k, C_in, C_out), got shapes "
                         f"{tuple(x.shape)} and {tuple(w.shape)}")
    return conv(x, w, b, stride, padding, dilation, groups, "conv1d")


def ConvND(n_spatial: int, d_out: int, kernel_size: int | Sequence[int], stride: Any = 1,
           padding: Padding = "SAME", dilation: Any = 1, groups: int = 1, use_bias: bool = True,
           w_init: Initializer = initializers.lecun_normal,
           b_init: Initializer = initializers.zeros, impl: str = "xla") -> Module:
    """The convolution module behind ``Conv1D`` and ``Conv2D`` (see :func:`Conv2D`)."""
    name = f"Conv{n_spatial}D"
    if not isinstance(d_out, int) or d_out < 1:
        raise ValueError(f"{name}: d_out must be a positive int, got {d_out!r}")
    fn = conv
    if impl != "xla":
        from jdl.kernels.conv import check_impl, fast_conv  # jdl.kernels builds on this file

        check_impl(name, impl)
        fn = partial(fast_conv, impl=impl)
    window = normalize_window(name, "kernel_size", kernel_size, n_spatial)
    normalize_window(name, "stride", stride, n_spatial)
    normalize_window(name, "dilation", dilation, n_spatial)

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        x = shape_struct(x)
        check_float(name, x)
        if x.ndim != n_spatial + 2:
            raise ValueError(f"{name}: expected an input of rank {n_spatial + 2} ({_AXES[n_spatial]}), "
                             f"got shape {tuple(x.shape)}")
        if x.shape[-1] % groups:
            raise ValueError(f"{name}: C_in={x.shape[-1]} is not divisible by groups={groups}")
        w_shape = (*window, x.shape[-1] // groups, d_out)
        conv_geometry(name, x.shape, w_shape, stride, padding, dilation, groups)
        kw, kb = jax.random.split(key)
        params = {"w": w_init(kw, w_shape, x.dtype)}
        if use_bias:
            params["b"] = b_init(kb, (d_out,), x.dtype)
        return params, {}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False):
        del key, train
        return fn(x, params["w"], params.get("b"), stride, padding, dilation, groups, name), state

    return leaf(init, apply, f"conv{n_spatial}d")


def Conv2D(d_out: int, kernel_size: int | Sequence[int], stride: int | Sequence[int] = 1,
           padding: Padding = "SAME", dilation: int | Sequence[int] = 1, groups: int = 1,
           use_bias: bool = True, w_init: Initializer = initializers.lecun_normal,
           b_init: Initializer = initializers.zeros, impl: str = "xla") -> Module:
    """A 2-D convolution layer: y = conv2d(x, w, stride, padding, dilation, groups) + b.

    It has k_h·k_w·(C_in/groups)·d_out + d_out parameters (``jdl.nn.conv_params``); 96 11×11
    filters on an RGB image have 364·96 = 34,944.

    Shapes: x (B, H, W, C_in) → (B, H', W', d_out). Params: ``w`` (k_h, k_w, C_in/groups, d_out)
    (HWIO), ``b`` (d_out,).

    Args:
      d_out: number of filters (output channels).
      kernel_size: an int or (k_h, k_w).
      stride, padding, dilation, groups: as in :func:`conv2d`; the default 'SAME' padding
        keeps H, W at stride 1.
      use_bias: add ``b``; not needed before BatchNorm.
      w_init, b_init: initializers; LeCun normal weights by default, as in flax.
      impl: 'xla' (default) computes :func:`conv2d`; 'auto' lets
        ``jdl.kernels.conv.choose_conv_impl`` pick a faster kernel of equal value and
        derivatives where the backend and shapes suit one; 'shifted' forces the shifted-sum
        kernel (``jdl.kernels.conv``).
    """
    return ConvND(2, d_out, kernel_size, stride, padding, dilation, groups, use_bias, w_init, b_init, impl)


def Conv1D(d_out: int, kernel_size: int, stride: int = 1, padding: Padding = "SAME",
           dilation: int = 1, groups: int = 1, use_bias: bool = True,
           w_init: Initializer = initializers.lecun_normal,
           b_init: Initializer = initializers.zeros) -> Module:
    """A 1-D convolution layer over sequences (MNIST-1D, audio): y = conv1d(x, w, …) + b.

    Shapes: x (B, L, C_in) → (B, L', d_out). Params: ``w`` (k, C_in/groups, d_out), ``b`` (d_out,).
    """
    return ConvND(1, d_out, kernel_size, stride, padding, dilation, groups, use_bias, w_init, b_init)
