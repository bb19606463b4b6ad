"""A 2-D convolution for few input channels as a sum of shifted copies of the input, and the
rule that decides when ``Conv2D(..., impl='auto')`` uses it instead of ``jdl.nn.conv2d``.

The course's convolution (stride 1, no dilation, one group) is

    y[n, i, j, o] = Σ_{a<k_h} Σ_{b<k_w} Σ_{c<C_in} x_pad[n, i + a, j + b, c] · w[a, b, c, o].

Read from the outside in, it is k_h·k_w·C_in multiply-adds of whole (B, H', W', C_out) arrays:
shift the input by (a, b), scale channel c by the C_out numbers w[a, b, c, :], and add. When
C_in is small (the first layer of an image network: 1 channel for MNIST, 3 for RGB) that is
few terms, and XLA:CPU turns them into one vectorized loop that beats its general convolution;
from about six input channels on the convolution wins (measured: benchmarks/NOTES.md, LeNet-5).

Two details make the sum pay inside a network:

- it runs over the batch in two tiles inside a ``lax.fori_loop``. XLA does not fuse across a
  loop boundary, so the activation that follows (a tanh, say) is not fused into the
  k_h·k_w·C_in-term loop, where it would stop vectorization. The loop depends on shapes only;
- its derivatives are ``lax.conv_general_dilated``'s (a custom JVP), so reverse mode runs XLA's
  own backward convolutions and forward mode (``jax.jvp``) works as well.

Values and derivatives equal ``jdl.nn.conv2d``'s to float rounding (the sums run in another
order); tests/kernels/test_conv.py checks value, gradient and JVP.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from jdl.nn.conv import add_bias, conv, conv_geometry
from jdl.nn.conv_arithmetic import Padding

IMPLS = ("xla", "shifted", "auto")
MAX_C_IN = 3  # the shifted sum is chosen up to this many input channels
_NHWC = ("NHWC", "HWIO", "NHWC")


def check_impl(name: str, impl: Any) -> None:
    """Raise ``ValueError`` naming the layer unless ``impl`` is one of ``IMPLS``."""
    if impl not in IMPLS:
        raise ValueError(f"{name}: impl must be one of {IMPLS}, got {impl!r}")


def shifted_applies(w_shape: tuple, stride: tuple, dilation: tuple, groups: int) -> bool:
    """True when the shifted sum computes this convolution: a 2-D kernel (k_h, k_w, C_in, C_out),
    stride 1, no dilation, one group."""
    return (len(w_shape) == 4 and groups == 1 and all(s == 1 for s in stride)
            and all(d == 1 for d in dilation))


def choose_conv_impl(w_shape: tuple, stride: tuple, dilation: tuple, groups: int,
                     dtype: Any = jnp.float32, backend: str | None = None) -> str:
    """The dispatch rule of ``impl='auto'``: 'shifted' when all of

    - the backend is the CPU (a GPU or TPU runs its own convolution kernels, and the
      shifted sum's loop would serialize work there),
    - :func:`shifted_applies` (2-D, stride 1, undilated, ungrouped),
    - C_in = w_shape[2] ≤ ``MAX_C_IN`` (more channels: XLA's convolution is faster),
    - the dtype is float32 or float64 (XLA:CPU's bfloat16/float16 elementwise code is many
      times slower than its convolution);

    else 'xla'. Shapes and dtype only, never values: the choice is made while tracing.

    Args:
      backend: 'cpu', 'gpu', 'tpu'; ``None`` reads ``jax.default_backend()``.
    """
    backend = jax.default_backend() if backend is None else backend
    fits = (backend == "cpu" and shifted_applies(w_shape, stride, dilation, groups)
            and w_shape[2] <= MAX_C_IN and jnp.dtype(dtype) in (jnp.float32, jnp.float64))
    return "shifted" if fits else "xla"


def _lax_conv(x: jax.Array, w: jax.Array, pads: tuple) -> jax.Array:
    return jax.lax.conv_general_dilated(x, w, (1, 1), pads, dimension_numbers=_NHWC)


def _shifted_sum(x: jax.Array, w: jax.Array, pads: tuple) -> jax.Array:
    """Σ_{a,b,c} x_pad[:, a:a+H', b:b+W', c] ⊗ w[a, b, c, :] on one batch tile."""
    kh, kw, cin, _ = w.shape
    x = jnp.pad(x, ((0, 0), *pads, (0, 0)))  # (B, H_pad, W_pad, C_in)
    h, ww = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    terms = (x[:, a:a + h, b:b + ww, c:c + 1] * w[a, b, c][None, None, None, :]  # (B, H', W', C_out)
             for a in range(kh) for b in range(kw) for c in range(cin))
    return sum(terms)


def _tiled_shifted_sum(x: jax.Array, w: jax.Array, pads: tuple) -> jax.Array:
    """The shifted sum over two batch tiles in a ``fori_loop`` (an odd batch gets one zero
    image, dropped again), so that XLA cannot fuse what follows into the sum."""
    b = x.shape[0]
    tile = -(-b // 2)  # ⌈B/2⌉
    xt = jnp.pad(x, ((0, 2 * tile - b), (0, 0), (0, 0), (0, 0)))  # (2·tile, H, W, C_in)
    h = x.shape[1] + sum(pads[0]) - w.shape[0] + 1
    ww = x.shape[2] + sum(pads[1]) - w.shape[1] + 1

    def body(i, y):
        xi = jax.lax.dynamic_slice_in_dim(xt, i * tile, tile, axis=0)  # (tile, H, W, C_in)
        return jax.lax.dynamic_update_slice_in_dim(y, _shifted_sum(xi, w, pads), i * tile, axis=0)

    y = jax.lax.fori_loop(0, 2, body, jnp.zeros((2 * tile, h, ww, w.shape[3]), jnp.result_type(x, w)))
    return y[:b]


@partial(jax.custom_jvp, nondiff_argnums=(2,))
def shifted_conv2d(x: jax.Array, w: jax.Array, pads: tuple) -> jax.Array:
    """Stride-1 2-D convolution (cross-correlation) as shifted multiply-adds (see the module):

        y[n, i, j, o] = Σ_{a,b,c} x_pad[n, i + a, j + b, c] · w[a, b, c, o]

    equal to ``lax.conv_general_dilated(x, w, (1, 1), pads)`` in NHWC/HWIO, derivatives too.

    Shapes: x (B, H, W, C_in), w (k_h, k_w, C_in, C_out), pads ((lo_h, hi_h), (lo_w, hi_w))
    → (B, H + lo_h + hi_h − k_h + 1, W + lo_w + hi_w − k_w + 1, C_out).
    """
    return _tiled_shifted_sum(x, w, pads)


def _jvp(pads, primals, tangents):
    """ẏ = conv(ẋ, w) + conv(x, ẇ) by ``lax``, skipping a zero tangent (the data's): reverse
    mode transposes it into XLA's own backward convolutions, forward mode works too."""
    (x, w), (dx, dw) = primals, tangents
    y = shifted_conv2d(x, w, pads)
    terms = [] if isinstance(dx, SymbolicZero) else [_lax_conv(dx, w, pads)]
    terms += [] if isinstance(dw, SymbolicZero) else [_lax_conv(x, dw, pads)]
    return y, sum(terms[1:], terms[0]) if terms else jnp.zeros_like(y)


shifted_conv2d.defjvp(_jvp, symbolic_zeros=True)


def fast_conv(x: jax.Array, w: jax.Array, b: jax.Array | None = None, stride: Any = 1,
              padding: Padding = "VALID", dilation: Any = 1, groups: int = 1, name: str = "conv",
              impl: str = "auto") -> jax.Array:
    """``jdl.nn.conv`` (y = x ⋆ w + b) computed by the kernel ``impl`` names:

    - 'xla': ``jdl.nn.conv``, one ``lax.conv_general_dilated``;
    - 'shifted': :func:`shifted_conv2d` (``ValueError`` if it does not apply);
    - 'auto': whichever :func:`choose_conv_impl` picks for these shapes, dtype and backend.

    Shapes: as ``jdl.nn.conv2d``: x (B, H, W, C_in), w (k_h, k_w, C_in/groups, C_out),
    b (C_out,) → (B, H', W', C_out); 1-D inputs go to ``jdl.nn.conv``.
    """
    check_impl(name, impl)
    geometry = conv_geometry(name, x.shape, w.shape, stride, padding, dilation, groups)
    stride_t, pads, dilation_t, _ = geometry
    if impl == "auto":
        impl = choose_conv_impl(w.shape, stride_t, dilation_t, groups, jnp.result_type(x, w))
    if impl == "xla":
        return conv(x, w, b, stride, padding, dilation, groups, name)
    if not shifted_applies(w.shape, stride_t, dilation_t, groups):
        raise ValueError(f"{name}: impl='shifted' needs a 2-D kernel, stride 1, dilation 1 and "
                         f"groups=1, got kernel {tuple(w.shape)}, stride {stride_t}, dilation "
                         f"{dilation_t}, groups {groups}")
    return add_bias(shifted_conv2d(x, w, tuple(tuple(p) for p in pads)), b)
