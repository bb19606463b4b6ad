"""Max pooling over windows that tile the input, as a reshape and a max, and the rule that
decides when ``MaxPool2D(..., impl='auto')`` uses it instead of ``jdl.nn.max_pool``.

When the stride equals the window and there is no padding, the windows are disjoint blocks:
(B, H, W, C) → (B, H/k_h, k_h, W/k_w, k_w, C), and the pool is a max over the two k axes.
Its values are ``lax.reduce_window``'s. Its derivative is written out (a custom JVP) so that
it is also ``reduce_window``'s, ties included:

    ẏ[n, i, j, c] = ẋ[n, k_h·i + a*, k_w·j + b*, c],
    (a*, b*) = the first (a, b) in row-major order with x[n, k_h·i + a, k_w·j + b, c] = y[n, i, j, c]

— the whole gradient of a window goes to its first maximum, as XLA's select-and-scatter gives
it (and PyTorch's ``max_pool2d``), rather than shared among tied maxima as ``jnp.max``'s own
rule would. Ties are common: a window of ReLU zeros. Both JVP and its transpose are elementwise
masks, which XLA:CPU runs faster than reduce_window's select-and-scatter (benchmarks/NOTES.md).
tests/kernels/test_pooling.py checks value, gradient and JVP against ``reduce_window``.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Sequence

import jax
import jax.numpy as jnp

from jdl.nn.conv_arithmetic import Padding
from jdl.nn.pooling import max_pool, pool_geometry

IMPLS = ("xla", "tiled", "auto")


def check_impl(name: str, impl: Any) -> None:
    """Raise ``ValueError`` naming the layer unless ``impl`` is one of ``IMPLS``."""
    if impl not in IMPLS:
        raise ValueError(f"{name}: impl must be one of {IMPLS}, got {impl!r}")


def tiles(dims: tuple, strides: tuple, pads: tuple) -> bool:
    """True when the windows are disjoint and unpadded: stride = window, no padding (dims,
    strides and pads as ``reduce_window`` takes them, batch and channel axes included)."""
    return dims == strides and not any(lo or hi for lo, hi in pads)


def choose_pool_impl(dims: tuple, strides: tuple, pads: tuple, backend: str | None = None) -> str:
    """The dispatch rule of ``impl='auto'``: 'tiled' on the CPU when :func:`tiles` holds, else
    'xla'. Shapes only, never values. (On GPU/TPU reduce_window and its select-and-scatter
    are native kernels; ``backend=None`` reads ``jax.default_backend()``.)"""
    backend = jax.default_backend() if backend is None else backend
    return "tiled" if backend == "cpu" and tiles(dims, strides, pads) else "xla"


def _blocks(x: jax.Array, window: tuple[int, ...]) -> jax.Array:
    """(B, *spatial, C) → (B, n_1/k_1, k_1, n_2/k_2, k_2, ..., C), cropping rows past the last
    whole window (as 'VALID' does)."""
    spatial = [n // k * k for n, k in zip(x.shape[1:-1], window)]
    x = x[(slice(None), *(slice(0, n) for n in spatial))]
    split = [d for n, k in zip(spatial, window) for d in (n // k, k)]
    return x.reshape(x.shape[0], *split, x.shape[-1])


def _window_axes(window: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(range(2, 2 + 2 * len(window), 2))


@partial(jax.custom_jvp, nondiff_argnums=(1,))
def tiled_max_pool(x: jax.Array, window: tuple[int, ...]) -> jax.Array:
    """Max pooling with stride = window and no padding: y[n, i, j, c] =
    max_{a<k_h, b<k_w} x[n, k_h·i + a, k_w·j + b, c], derivative to the first maximum (module).

    Shapes: x (B, *spatial, C) → (B, *(n // k), C).
    """
    return jnp.max(_blocks(x, window), axis=_window_axes(window))


def _first_max_mask(xb: jax.Array, window: tuple[int, ...]) -> jax.Array:
    """True at the first maximum of each block of xb (B, n/k, k, ..., C), in row-major window
    order: position p = Σ a_d·stride_d; keep the smallest p where x equals the block's max."""
    axes = _window_axes(window)
    shape = [1] * xb.ndim
    pos = jnp.zeros((), jnp.int32)
    for ax, k, step in zip(axes, window, [math.prod(window[d + 1:]) for d in range(len(window))]):
        shape_ax = list(shape)
        shape_ax[ax] = k
        pos = pos + jnp.arange(k, dtype=jnp.int32).reshape(shape_ax) * step  # broadcasts to (1, .., k, .., 1)
    is_max = xb == jnp.max(xb, axis=axes, keepdims=True)
    first = jnp.min(jnp.where(is_max, pos, math.prod(window)), axis=axes, keepdims=True)
    return pos == first


@tiled_max_pool.defjvp
def _jvp(window, primals, tangents):
    (x,), (dx,) = primals, tangents
    xb = _blocks(x, window)
    mask = _first_max_mask(xb, window)
    dy = jnp.sum(jnp.where(mask, _blocks(dx, window), 0), axis=_window_axes(window))
    return jnp.max(xb, axis=_window_axes(window)), dy


def fast_max_pool(x: jax.Array, window: int | Sequence[int], stride: int | Sequence[int] | None = None,
                  padding: Padding = "VALID", impl: str = "auto", name: str = "max_pool") -> jax.Array:
    """``jdl.nn.max_pool`` (y = max over each window) computed by the kernel ``impl`` names:

    - 'xla': ``jdl.nn.max_pool``, one ``lax.reduce_window``;
    - 'tiled': :func:`tiled_max_pool` (``ValueError`` unless stride = window, no padding);
    - 'auto': whichever :func:`choose_pool_impl` picks.

    Shapes: x (B, *spatial, C) → (B, *spatial', C), as ``jdl.nn.max_pool``.
    """
    check_impl(name, impl)
    dims, strides, pads = pool_geometry(name, x, window, stride, padding)
    if impl == "auto":
        impl = choose_pool_impl(dims, strides, pads)
    if impl == "xla":
        return max_pool(x, window, stride, padding)
    if not tiles(dims, strides, pads):
        raise ValueError(f"{name}: impl='tiled' needs stride = window and no padding, got window "
                         f"{dims[1:-1]}, stride {strides[1:-1]}, padding {pads[1:-1]}")
    return tiled_max_pool(x, dims[1:-1])
