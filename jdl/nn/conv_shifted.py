"""A 2-D convolution for few input channels, as a sum of shifted copies of the input.

    y[n, i, j, o] = Σ_{a<k_h} Σ_{b<k_w} Σ_{c<C_in} x_pad[n, i + a, j + b, c] · w[a, b, c, o]

is k_h·k_w·C_in multiply-adds of whole (B, H', W', C_out) arrays, one fused loop. On XLA:CPU it
is 2–8× faster than ``lax.conv_general_dilated`` when C_in ≤ 3, the first layer of an image
network (LeNet-5's 5×5 on one channel: 0.55 vs 4.8 ms forward at batch 128), and slower from
C_in ≈ 6 on (benchmarks/NOTES.md). Two details make it pay inside a network:

- the sum runs inside a ``lax.cond`` whose other branch is ``lax.conv_general_dilated`` (the
  same value): XLA cannot fuse across a conditional, so a following tanh is not fused into the
  loop, where it stops vectorization (6.4 ms instead of 0.8);
- its derivatives are ``lax.conv_general_dilated``'s (a custom JVP, outside the conditional),
  so reverse mode runs XLA's own backward convolutions and forward mode works as well.

Used on CPU only: a conditional on GPU/TPU reads its predicate on the host.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

MAX_C_IN = 3  # the fast path pays off up to this many input channels (measured on XLA:CPU)
_NHWC = ("NHWC", "HWIO", "NHWC")


def use_shifted(w_shape: tuple, stride: tuple, dilation: tuple, groups: int,
                dtype: Any = jnp.float32) -> bool:
    """True on CPU for a float32, stride-1, undilated, ungrouped 2-D kernel (k_h, k_w, C_in,
    C_out) with C_in ≤ MAX_C_IN, where ``shifted_conv2d`` is the faster formulation. Not for
    bfloat16/float16: XLA:CPU's elementwise code for them is many times slower, and the 25-term
    sum of a 5×5 kernel took 19.7 ms against lax's ~1 ms (LeNet-5's first layer, batch 128)."""
    return (len(w_shape) == 4 and w_shape[2] <= MAX_C_IN and groups == 1
            and all(s == 1 for s in stride) and all(d == 1 for d in dilation)
            and jnp.dtype(dtype) in (jnp.float32, jnp.float64)
            and jax.default_backend() == "cpu")


def _lax_conv(x: jax.Array, w: jax.Array, pads: tuple) -> jax.Array:
    return jax.lax.conv_general_dilated(x, w, (1, 1), pads, dimension_numbers=_NHWC)


def _shifted_sum(x: jax.Array, w: jax.Array, pads: tuple) -> jax.Array:
    kh, kw, cin, _ = w.shape
    x = jnp.pad(x, ((0, 0), *pads, (0, 0)))  # (B, H_pad, W_pad, C_in)
    h, ww = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    terms = (x[:, a:a + h, b:b + ww, c:c + 1] * w[a, b, c][None, None, None, :]  # (B, H', W', C_out)
             for a in range(kh) for b in range(kw) for c in range(cin))
    return sum(terms)


@partial(jax.custom_jvp, nondiff_argnums=(2,))
def shifted_conv2d(x: jax.Array, w: jax.Array, pads: tuple) -> jax.Array:
    """Stride-1 2-D convolution (cross-correlation) as shifted multiply-adds (see the module);
    equal to ``lax.conv_general_dilated(x, w, (1, 1), pads)`` in NHWC/HWIO.

    Shapes: x (B, H, W, C_in), w (k_h, k_w, C_in, C_out), pads ((lo_h, hi_h), (lo_w, hi_w))
    → (B, H + lo_h + hi_h − k_h + 1, W + lo_w + hi_w − k_w + 1, C_out).
    """
    # Both branches compute the same y; the predicate is only opaque to XLA (a fusion fence).
    fence = jnp.isfinite(w.ravel()[0])
    return jax.lax.cond(fence, partial(_shifted_sum, pads=pads), partial(_lax_conv, pads=pads), x, w)


def _jvp(pads, primals, tangents):
    """ẏ = conv(ẋ, w) + conv(x, ẇ) by ``lax``, skipping a zero tangent (the data's): reverse
    mode transposes it into XLA's own backward convolutions, forward mode works too."""
    (x, w), (dx, dw) = primals, tangents
    y = shifted_conv2d(x, w, pads)
    terms = [] if isinstance(dx, SymbolicZero) else [_lax_conv(dx, w, pads)]
    terms += [] if isinstance(dw, SymbolicZero) else [_lax_conv(x, dw, pads)]
    return y, sum(terms[1:], terms[0]) if terms else jnp.zeros_like(y)


shifted_conv2d.defjvp(_jvp, symbolic_zeros=True)
