"""Residual networks (He, Zhang, Ren & Sun 2016) and their plain counterparts.

A residual block computes y = relu(F(x) + x): the layers F learn only the change to x. By the
chain rule ∂L/∂x = ∂L/∂y·(1 + F'(x)) (through the relu's open units), so the gradient keeps a
path of 1 around every block however deep the network, while a plain stack multiplies the
F'(x) of every layer and its gradient can vanish — the degradation problem, where a deeper
plain network trains *worse* than a shallower one. When a block changes the width or strides,
the identity no longer fits, and a 1×1 convolution with the same stride (followed by the norm)
projects x to the new shape ("option B" of the paper).

Convolutions here have no bias (the BatchNorm after each one makes it redundant) and He
initialization. ``norm`` is any function returning a layer that keeps its input's shape; the
default is ``batch_norm``, i.e. ``jdl.nn.BatchNorm(momentum=0.9)``.
"""

from __future__ import annotations

from typing import Callable, Sequence

from jdl import init as initializers
from jdl.core import Module
from jdl.nn.activations import relu
from jdl.nn.combinators import residual, serial
from jdl.nn.conv import Conv2D
from jdl.nn.linear import Dense
from jdl.nn.norm import BatchNorm
from jdl.nn.pooling import GlobalAvgPool, MaxPool2D

NormFactory = Callable[[], Module]


def batch_norm() -> Module:
    """The default norm of a ResNet: ``jdl.nn.BatchNorm(momentum=0.9)`` over the channels —
    PyTorch's ResNet setting (its momentum 0.1 read as jdl's/flax's 0.9), so the running
    statistics that evaluation uses settle within a few hundred steps."""
    return BatchNorm(momentum=0.9)


def _conv(c_out: int, k: int, stride: int = 1, impl: str = "xla") -> Module:
    pad = "SAME" if stride == 1 else (k - 1) // 2  # PyTorch's padding for strided convs
    return Conv2D(c_out, k, stride=stride, padding=pad, use_bias=False, w_init=initializers.he_normal,
                  impl=impl)


def _finish(body: Module, c_out: int, stride: int, projection: bool, norm: NormFactory,
            shortcut: bool) -> Module:
    if not shortcut:
        return serial(body, relu)  # the plain counterpart: y = relu(F(x))
    proj = serial(_conv(c_out, 1, stride), norm()) if projection else None
    return serial(residual(body, proj), relu)  # y = relu(F(x) + x) or relu(F(x) + W_s x)


def basic_block(c_out: int, stride: int = 1, projection: bool = False, norm: NormFactory = batch_norm,
                shortcut: bool = True) -> Module:
    """The basic block of ResNet-18/34 and the CIFAR ResNets:

        F(x) = BN(conv3×3(relu(BN(conv3×3_s(x)))));  y = relu(F(x) + x)

    with x replaced by BN(conv1×1_s(x)) when ``projection`` (the width or the stride changes),
    and y = relu(F(x)) when ``shortcut=False`` (the plain network).

    Shapes: (B, H, W, C_in) → (B, ⌈H/s⌉, ⌈W/s⌉, c_out).
    """
    body = serial(_conv(c_out, 3, stride), norm(), relu, _conv(c_out, 3), norm())
    return _finish(body, c_out, stride, projection, norm, shortcut)


def bottleneck_block(c_mid: int, stride: int = 1, projection: bool = False,
                     norm: NormFactory = batch_norm, shortcut: bool = True, expansion: int = 4) -> Module:
    """The bottleneck block of ResNet-50/101/152: a 1×1 convolution reduces the width to
    ``c_mid``, a 3×3 (with the stride) works at that width, and a 1×1 restores
    ``expansion·c_mid`` channels — the same 1×1 reduction trick as Inception:

        F(x) = BN(conv1×1(relu(BN(conv3×3_s(relu(BN(conv1×1(x))))))));  y = relu(F(x) + x)

    Shapes: (B, H, W, C_in) → (B, ⌈H/s⌉, ⌈W/s⌉, expansion·c_mid).
    """
    c_out = expansion * c_mid
    body = serial(_conv(c_mid, 1), norm(), relu, _conv(c_mid, 3, stride), norm(), relu,
                  _conv(c_out, 1), norm())
    return _finish(body, c_out, stride, projection, norm, shortcut)


def resnet(stage_sizes: Sequence[int], widths: Sequence[int], n_classes: int = 1000,
           block: str = "basic", stem: str = "imagenet", norm: NormFactory = batch_norm,
           shortcut: bool = True) -> Module:
    """A ResNet: a stem, stages of residual blocks (the first block of every stage but the
    first halves H and W with stride 2 and projects the shortcut), global average pooling and
    a dense layer of logits.

    Args:
      stage_sizes: blocks per stage, e.g. (2, 2, 2, 2) for ResNet-18.
      widths: channels per stage (for bottlenecks, the inner width; the output is 4× that).
      block: 'basic' or 'bottleneck'.
      stem: 'imagenet' (7×7/2 convolution with 64 filters, BN, ReLU, 3×3/2 max pool) or
        'cifar' (3×3 convolution with widths[0] filters, BN, ReLU).
      norm: a function returning the normalization layer (default BatchNorm).
      shortcut: False builds the plain network of the same depth (no skip connections).

    Shapes: (B, H, W, C) → (B, n_classes).
    """
    if block not in ("basic", "bottleneck"):
        raise ValueError(f"resnet: block must be 'basic' or 'bottleneck', got {block!r}")
    if stem not in ("imagenet", "cifar"):
        raise ValueError(f"resnet: stem must be 'imagenet' or 'cifar', got {stem!r}")
    if len(stage_sizes) != len(widths) or not all(n >= 1 for n in stage_sizes):
        raise ValueError(f"resnet: need one positive block count per width, got stage_sizes="
                         f"{tuple(stage_sizes)}, widths={tuple(widths)}")
    if stem == "imagenet":
        c = 64
        layers: list = [_conv(c, 7, 2), norm(), relu, MaxPool2D(3, 2, padding=1)]
    else:
        c = widths[0]
        layers = [_conv(c, 3, impl="auto"), norm(), relu]  # RGB stem: jdl.kernels.conv's rule
    make, expansion = (basic_block, 1) if block == "basic" else (bottleneck_block, 4)
    for i, (n_blocks, width) in enumerate(zip(stage_sizes, widths)):
        for j in range(n_blocks):
            stride = 2 if i > 0 and j == 0 else 1
            c_out = expansion * width
            layers.append(make(width, stride, stride != 1 or c != c_out, norm, shortcut))
            c = c_out
    return serial(*layers, GlobalAvgPool(), Dense(n_classes))


def resnet18(n_classes: int = 1000, **kw) -> Module:
    """ResNet-18: basic blocks (2, 2, 2, 2), widths 64–512; 11,689,512 parameters with 1000 classes."""
    return resnet((2, 2, 2, 2), (64, 128, 256, 512), n_classes, "basic", **kw)


def resnet34(n_classes: int = 1000, **kw) -> Module:
    """ResNet-34: basic blocks (3, 4, 6, 3); 21,797,672 parameters with 1000 classes."""
    return resnet((3, 4, 6, 3), (64, 128, 256, 512), n_classes, "basic", **kw)


def resnet50(n_classes: int = 1000, **kw) -> Module:
    """ResNet-50: bottleneck blocks (3, 4, 6, 3); 25,557,032 parameters with 1000 classes."""
    return resnet((3, 4, 6, 3), (64, 128, 256, 512), n_classes, "bottleneck", **kw)


def cifar_resnet(depth: int, n_classes: int = 10, widths: Sequence[int] = (16, 32, 64), **kw) -> Module:
    """The CIFAR ResNets of the paper (section 4.2): depth = 6n + 2 layers, a 3×3 stem, three
    stages of n basic blocks with 16, 32, 64 channels on 32×32, 16×16, 8×8 maps, global average
    pooling and the logits. ``shortcut=False`` gives the plain net of the same depth.

    Shapes: (B, H, W, C) → (B, n_classes).
    """
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"cifar_resnet: depth must be 6n + 2 with n ≥ 1 (8, 14, 20, 32, 56, …), got {depth}")
    n = (depth - 2) // 6
    return resnet((n,) * len(widths), widths, n_classes, "basic", stem="cifar", **kw)


def resnet20(n_classes: int = 10, **kw) -> Module:
    """ResNet-20 for CIFAR (n = 3); 0.27M parameters."""
    return cifar_resnet(20, n_classes, **kw)


def resnet32(n_classes: int = 10, **kw) -> Module:
    """ResNet-32 for CIFAR (n = 5); 0.46M parameters."""
    return cifar_resnet(32, n_classes, **kw)


def resnet56(n_classes: int = 10, **kw) -> Module:
    """ResNet-56 for CIFAR (n = 9); 0.85M parameters."""
    return cifar_resnet(56, n_classes, **kw)
