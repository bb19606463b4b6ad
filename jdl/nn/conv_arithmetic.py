"""Convolution arithmetic: output sizes, padding, receptive fields and parameter counts.

The course writes the output size of a convolution in two ways, and both are here:

* per side (cheat sheet): ``n_out = ⌊(n + 2p − f)/s⌋ + 1`` with ``p`` zeros added on *each*
  side — :func:`conv_output_size`;
* total (d2l-style slides): ``n_out = ⌊(n − k + p + s)/s⌋`` with ``p`` the rows added *in all*
  (both sides together) — :func:`conv_output_size_total`. The 9×13 quiz uses this form: a 3×3
  kernel, stride 2 and total padding 2 on 9×13 gives 5×7.

They agree when the total padding is twice the per-side one. With dilation ``d`` the kernel
spans ``d·(f − 1) + 1`` inputs, which replaces ``f``. Everything here is plain Python on
ints, so it runs at trace time and in error messages.
"""

from __future__ import annotations

import math
from typing import Sequence, Union

Padding = Union[str, int, Sequence[int], Sequence[Sequence[int]]]


def effective_kernel(k: int, dilation: int = 1) -> int:
    """The span of a dilated kernel: d·(k − 1) + 1 inputs."""
    return dilation * (k - 1) + 1


def conv_output_size(n: int, k: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output size with ``padding`` zeros on EACH side: ⌊(n + 2p − d(f−1) − 1)/s⌋ + 1,
    which is the course's ⌊(n + 2p − f)/s⌋ + 1 for d = 1.

    >>> conv_output_size(227, 11, stride=4)   # AlexNet's first layer
    55
    >>> conv_output_size(4, 3, stride=2, padding=1)
    2
    """
    return (n + 2 * padding - effective_kernel(k, dilation)) // stride + 1


def conv_output_size_total(n: int, k: int, stride: int = 1, total_padding: int = 0,
                           dilation: int = 1) -> int:
    """Output size with ``total_padding`` rows added IN ALL (both sides together):
    ⌊(n − k + p + s)/s⌋ (the d2l-style slides), with k the dilated span d(k − 1) + 1.

    >>> conv_output_size_total(9, 3, stride=2, total_padding=2), conv_output_size_total(13, 3, stride=2, total_padding=2)
    (5, 7)
    """
    return (n - effective_kernel(k, dilation) + total_padding + stride) // stride


def same_padding(n: int, k: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """The (before, after) zeros that make the output size ⌈n/s⌉ ('SAME', as XLA and
    TensorFlow define it); for stride 1 the output keeps the input's size n.

    Setting ⌊(n − k + p + 1)/1⌋ = n and solving gives a total p = k − 1: for an odd kernel
    (k − 1)/2 on each side (the course's "padding finder"); for an even one the extra zero
    goes after. With stride s: p = max((⌈n/s⌉ − 1)·s + d(k − 1) + 1 − n, 0).

    >>> same_padding(32, 3), same_padding(32, 4), same_padding(7, 3, stride=2)
    ((1, 1), (1, 2), (1, 1))
    """
    out = -(-n // stride)
    total = max((out - 1) * stride + effective_kernel(k, dilation) - n, 0)
    return total // 2, total - total // 2


def _tuple(name: str, what: str, value: int | Sequence[int], n_spatial: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n_spatial
    value = tuple(value)
    if len(value) != n_spatial or not all(isinstance(v, int) for v in value):
        raise ValueError(f"{name}: {what} must be an int or {n_spatial} ints, got {value!r}")
    return value


def normalize_window(name: str, what: str, value: int | Sequence[int], n_spatial: int,
                     minimum: int = 1) -> tuple[int, ...]:
    """``value`` as one int per spatial axis, each at least ``minimum`` (a clear error if not)."""
    out = _tuple(name, what, value, n_spatial)
    if any(v < minimum for v in out):
        raise ValueError(f"{name}: {what} must be at least {minimum}, got {value!r}")
    return out


def normalize_padding(name: str, padding: Padding, sizes: Sequence[int], kernel: Sequence[int],
                      stride: Sequence[int], dilation: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """Explicit (before, after) zeros per spatial axis from any of jdl's padding forms:

    * 'VALID': no padding; 'SAME': :func:`same_padding` (output ⌈n/s⌉);
    * an int p: p on each side of every axis (the per-side convention);
    * one int per axis (p_h, p_w): that many on each side of that axis;
    * pairs ((lo_h, hi_h), (lo_w, hi_w)): exactly as given (e.g. a total padding split unevenly).
    """
    n = len(sizes)
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return ((0, 0),) * n
        if mode == "SAME":
            return tuple(same_padding(*args) for args in zip(sizes, kernel, stride, dilation))
        raise ValueError(f"{name}: padding must be 'SAME', 'VALID', an int or pairs, got {padding!r}")
    if isinstance(padding, int):
        pads = ((padding, padding),) * n
    else:
        padding = tuple(padding)
        if len(padding) != n:
            raise ValueError(f"{name}: padding needs one entry per spatial axis ({n}), got {padding!r}")
        pads = tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)
    if any(len(p) != 2 or not all(isinstance(v, int) and v >= 0 for v in p) for p in pads):
        raise ValueError(f"{name}: padding must be non-negative ints, got {padding!r}")
    return pads


def check_conv_sizes(name: str, sizes: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                     pads: Sequence[tuple[int, int]], dilation: Sequence[int]) -> tuple[int, ...]:
    """Output sizes ⌊(n + lo + hi − d(k−1) − 1)/s⌋ + 1 per axis; a ``ValueError`` spelling out
    the arithmetic when the (dilated) kernel is larger than the padded input."""
    out = []
    for n, k, s, (lo, hi), d in zip(sizes, kernel, stride, pads, dilation):
        span = effective_kernel(k, d)
        if n + lo + hi < span:
            raise ValueError(
                f"{name}: kernel larger than the padded input: input {n}, kernel {k}"
                + (f" (dilation {d}, span {span})" if d != 1 else "")
                + f", padding ({lo}, {hi}), stride {s} gives ⌊({n} + {lo + hi} − {span})/{s}⌋ + 1 = "
                f"{(n + lo + hi - span) // s + 1} outputs; use a smaller kernel or more padding")
        out.append((n + lo + hi - span) // s + 1)
    return tuple(out)


def receptive_field(layers: Sequence[Sequence[int]]) -> int:
    """Receptive field of a stack of convolutions/poolings, each given as (kernel, stride) or
    (kernel, stride, dilation):  r = 1 + Σ_l d_l·(k_l − 1)·Π_{i<l} s_i.

    Each layer widens what one output sees by (k_l − 1) steps of the previous layers' total
    stride ("receptive fields grow over depth").

    >>> receptive_field([(3, 1), (3, 1)])          # two 3×3 convolutions see 5×5
    5
    >>> receptive_field([(3, 1), (2, 2), (3, 1)])  # conv, 2×2 pool, conv
    8
    """
    r, jump = 1, 1
    for layer in layers:
        k, s, d = (tuple(layer) + (1,))[:3]
        r += d * (k - 1) * jump
        jump *= s
    return r


def conv_params(kernel_size: int | Sequence[int], c_in: int, c_out: int, use_bias: bool = True,
                groups: int = 1) -> int:
    """Parameters of a convolution: f_h·f_w·(C_in/groups)·C_out weights + C_out biases. An int
    ``kernel_size`` means a square f×f kernel; give ``(f,)`` for a 1-D one.

    >>> conv_params(11, 3, 96)    # 96 11×11 filters on an RGB image: 364·96
    34944
    >>> conv_params(3, 3, 8), conv_params(3, 8, 16)
    (224, 1168)
    """
    window = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    return math.prod(window) * (c_in // groups) * c_out + (c_out if use_bias else 0)


def dense_params(d_in: int, d_out: int, use_bias: bool = True) -> int:
    """Parameters of a fully connected layer: d·N + N.

    >>> dense_params(1024, 10)
    10250
    """
    return d_in * d_out + (d_out if use_bias else 0)


def batchnorm_params(channels: int) -> tuple[int, int]:
    """BatchNorm over C channels: (2C learnable γ, β; 2C running mean and variance).

    >>> batchnorm_params(8)
    (16, 16)
    """
    return 2 * channels, 2 * channels
