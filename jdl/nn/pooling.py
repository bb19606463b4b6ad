"""Pooling: a fixed reduction (max or mean) over each window, with no parameters.

Max pooling keeps the strongest response in a window, average pooling its mean signal; both
shrink H and W by the stride and have no learnable parameters. Inputs are channels-last:
(B, H, W, C) in 2-D, (B, L, C) in 1-D; each channel is pooled on its own.

This file holds only the definitions (one ``lax.reduce_window`` each). A faster max pool for
windows that tile the input lives in ``jdl.kernels.pooling``, chosen explicitly with
``MaxPool2D(..., impl='auto')``.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Sequence

import jax
import jax.numpy as jnp

from jdl.core import Module, Params, PRNGKey, State, check_rank, leaf, shape_struct
from jdl.nn.conv_arithmetic import Padding, check_conv_sizes, normalize_padding, normalize_window

_AXES = {1: "B, L, C", 2: "B, H, W, C"}


def pool_geometry(name: str, x: Any, window: Any, stride: Any, padding: Padding) -> tuple:
    """Check a pool's sizes and return reduce_window's (dims, strides, pads), batch and channel
    axes included; ``ValueError`` naming the layer when the window does not fit."""
    n = x.ndim - 2
    if n < 1:
        raise ValueError(f"{name}: expected an input (B, ..., C) with at least one spatial axis, "
                         f"got shape {tuple(x.shape)}")
    window = normalize_window(name, "window", window, n)
    stride = window if stride is None else normalize_window(name, "stride", stride, n)
    pads = normalize_padding(name, padding, x.shape[1:-1], window, stride, (1,) * n)
    check_conv_sizes(name, x.shape[1:-1], window, stride, pads, (1,) * n)
    return (1, *window, 1), (1, *stride, 1), ((0, 0), *pads, (0, 0))


def max_pool(x: jax.Array, window: int | Sequence[int], stride: int | Sequence[int] | None = None,
             padding: Padding = "VALID") -> jax.Array:
    """Max pooling: y[n, i, j, c] = max_{a<k_h, b<k_w} x_pad[n, s_h·i + a, s_w·j + b, c]
    (padding counts as −∞, so it never wins).

    Shapes: x (B, *spatial, C) → (B, *spatial', C), spatial' = ⌊(n + lo + hi − k)/s⌋ + 1.
    ``stride`` defaults to the window (non-overlapping windows).

    >>> max_pool(jnp.arange(9.0).reshape(1, 3, 3, 1), 2, stride=1)[0, :, :, 0].tolist()
    [[4.0, 5.0], [7.0, 8.0]]
    """
    dims, strides, pads = pool_geometry("max_pool", x, window, stride, padding)
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, dims, strides, pads)


def avg_pool(x: jax.Array, window: int | Sequence[int], stride: int | Sequence[int] | None = None,
             padding: Padding = "VALID", count_include_pad: bool = True) -> jax.Array:
    """Average pooling: y[n, i, j, c] = (1/|window|) Σ_{a, b} x_pad[n, s_h·i + a, s_w·j + b, c].

    With padding, ``count_include_pad=True`` divides by k_h·k_w, zeros included (PyTorch's and
    flax's default); ``False`` divides by the number of real pixels in the window.

    Shapes: as :func:`max_pool`.
    """
    dims, strides, pads = pool_geometry("avg_pool", x, window, stride, padding)
    total = jax.lax.reduce_window(x, 0.0, jax.lax.add, dims, strides, pads)
    if count_include_pad:
        return total / math.prod(dims)
    count = jax.lax.reduce_window(jnp.ones(x.shape[1:-1], x.dtype), 0.0, jax.lax.add, dims[1:-1],
                                  strides[1:-1], pads[1:-1])  # (*spatial',)
    return total / count[None, ..., None]


def _pool_module(kind: str, n_spatial: int, window: Any, stride: Any, padding: Padding,
                 impl: str = "xla") -> Module:
    name = f"{'Max' if kind == 'max' else 'Avg'}Pool{n_spatial}D"
    normalize_window(name, "window", window, n_spatial)
    if stride is not None:
        normalize_window(name, "stride", stride, n_spatial)
    fn = max_pool if kind == "max" else avg_pool
    if impl != "xla":
        from jdl.kernels.pooling import check_impl, fast_max_pool  # jdl.kernels builds on this file

        check_impl(name, impl)
        fn = partial(fast_max_pool, impl=impl, name=name)

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        del key
        x = shape_struct(x)
        check_rank(name, x, (n_spatial + 2,), _AXES[n_spatial])
        pool_geometry(name, x, window, stride, padding)
        return {}, {}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False):
        del params, key, train
        check_rank(name, x, (n_spatial + 2,), _AXES[n_spatial])
        return fn(x, window, stride, padding), state

    return leaf(init, apply, f"{kind}_pool{n_spatial}d")


def MaxPool2D(window: int | Sequence[int], stride: int | Sequence[int] | None = None,
              padding: Padding = "VALID", impl: str = "xla") -> Module:
    """Max pooling over H, W (:func:`max_pool`); ``stride`` defaults to ``window``. No params.

    Shapes: (B, H, W, C) → (B, H', W', C); ``MaxPool2D(2)`` halves H and W (POOL-2).

    Args:
      impl: 'xla' (default) computes :func:`max_pool`; 'auto' lets
        ``jdl.kernels.pooling.choose_pool_impl`` pick the reshape kernel (same values and
        derivatives, ties included) where the windows tile the input on the CPU; 'tiled'
        forces it.
    """
    return _pool_module("max", 2, window, stride, padding, impl)


def AvgPool2D(window: int | Sequence[int], stride: int | Sequence[int] | None = None,
              padding: Padding = "VALID") -> Module:
    """Average pooling over H, W (:func:`avg_pool`); ``stride`` defaults to ``window``. No params.

    Shapes: (B, H, W, C) → (B, H', W', C)."""
    return _pool_module("avg", 2, window, stride, padding)


def MaxPool1D(window: int, stride: int | None = None, padding: Padding = "VALID",
              impl: str = "xla") -> Module:
    """Max pooling over a sequence: (B, L, C) → (B, L', C); ``impl`` as in :func:`MaxPool2D`."""
    return _pool_module("max", 1, window, stride, padding, impl)


def AvgPool1D(window: int, stride: int | None = None, padding: Padding = "VALID") -> Module:
    """Average pooling over a sequence: (B, L, C) → (B, L', C)."""
    return _pool_module("avg", 1, window, stride, padding)


def global_avg_pool(x: jax.Array) -> jax.Array:
    """The mean of each channel over all positions: y[n, c] = mean_{i, j} x[n, i, j, c].

    Shapes: (B, *spatial, C) → (B, C)."""
    if x.ndim < 3:
        raise ValueError(f"global_avg_pool: expected (B, ..., C) with a spatial axis, got {tuple(x.shape)}")
    return jnp.mean(x, axis=tuple(range(1, x.ndim - 1)))


def GlobalAvgPool() -> Module:
    """Global average pooling (ResNet, GoogLeNet heads): (B, *spatial, C) → (B, C). No params."""

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        del key
        x = shape_struct(x)
        if x.ndim < 3:
            raise ValueError(f"GlobalAvgPool: expected (B, ..., C) with a spatial axis, got {tuple(x.shape)}")
        return {}, {}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False):
        del params, key, train
        return global_avg_pool(x), state

    return leaf(init, apply, "global_avg_pool")
