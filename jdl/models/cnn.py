"""Convolutional classifiers: LeNet-5, a small CNN, the VGG family and a 1-D CNN for MNIST-1D.

A CNN is an "automatic feature extractor" (convolutions and pooling: local, weight-shared
filters whose receptive fields grow over depth) followed by a "regular classifier" (dense
layers), as in LeCun et al. 1998. Inputs are NHWC images (B, H, W, C), or (B, L[, C]) sequences
for ``cnn1d``; every model returns (B, n_classes) logits.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Sequence, Union

import jax

from jdl.core import Module
from jdl.nn.activations import leaky_relu, relu, tanh
from jdl.nn.combinators import serial
from jdl.nn.conv import Conv1D, Conv2D
from jdl.nn.linear import Dense, Flatten
from jdl.nn.pooling import AvgPool2D, MaxPool2D

Activation = Callable[[jax.Array], jax.Array]


def _check_image_shape(name: str, input_shape: Sequence[int]) -> tuple[int, int, int]:
    if len(input_shape) != 3 or not all(isinstance(d, int) and d > 0 for d in input_shape):
        raise ValueError(f"{name}: input_shape must be (H, W, C) of positive ints, got {tuple(input_shape)!r}")
    return tuple(input_shape)


def lenet5(n_classes: int = 10, input_shape: Sequence[int] = (28, 28, 1),
           activation: Activation = tanh, pool: str = "avg", impl: str = "auto") -> Module:
    """LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998), adapted to the input size:

        C1: 6 5×5 filters → S2: 2×2 pool → C3: 16 5×5 filters → S4: 2×2 pool
        → C5: 120 units → F6: 84 units → n_classes logits

    The paper's 32×32 input becomes 28×28 after C1; smaller images (MNIST's 28×28, digits' 8×8)
    get 'SAME' padding in C1 so C1 keeps their size (for MNIST the usual padding of 2, giving
    the paper's 28×28 C1 maps). C3 uses
    no padding when its input is at least 10×10 (the paper's 14 → 10) and 'SAME' below that. C5
    is the paper's 5×5 convolution over the 5×5 S4 maps, i.e. a dense layer on their flattening
    (48,120 parameters). Simplifications: C3 connects to all six S2 maps (the paper used a
    sparse table), S2/S4 are plain pools (the paper's had a trainable scale and bias), and the
    output is a dense layer of logits instead of RBF units. On 28×28×1 it has 61,706 parameters.

    Shapes: (B, H, W, C) → (B, n_classes).

    Args:
      activation: tanh as in the paper (scaled tanh there); ``relu`` is the modern choice.
      pool: 'avg' (the paper's subsampling) or 'max'.
      impl: passed to the convolutions and max pools: 'auto' (default) lets ``jdl.kernels``
        pick a faster kernel of equal value and derivatives where one pays (C1's single input
        channel on the CPU: the shifted sum); 'xla' runs the plain definitions.
    """
    h, w, _ = _check_image_shape("lenet5", input_shape)
    if pool not in ("avg", "max"):
        raise ValueError(f"lenet5: pool must be 'avg' or 'max', got {pool!r}")
    Pool = AvgPool2D if pool == "avg" else partial(MaxPool2D, impl=impl)
    c1_pad = "VALID" if min(h, w) >= 32 else "SAME"
    s2 = (min(h, w) - 4 if c1_pad == "VALID" else min(h, w)) // 2
    c3_pad = "VALID" if s2 >= 10 else "SAME"
    return serial(
        Conv2D(6, 5, padding=c1_pad, impl=impl), activation, Pool(2),  # C1, S2
        Conv2D(16, 5, padding=c3_pad, impl=impl), activation, Pool(2),  # C3, S4
        Flatten(), Dense(120), activation,  # C5
        Dense(84), activation,  # F6
        Dense(n_classes),
    )


def cnn(n_classes: int = 10, input_shape: Sequence[int] = (32, 32, 3), channels: Sequence[int] = (8, 16),
        activation: Activation = leaky_relu, norm: Callable[[], Module] | None = None,
        hidden: Sequence[int] = (), impl: str = "auto") -> Module:
    """A small CNN: for each width c, CONV3-c ('SAME') → activation → POOL-2, with ``norm()``
    (e.g. ``jdl.nn.BatchNorm``) between blocks; then flatten, optional hidden dense layers,
    and a dense layer of logits. Pooling stops once the map is 1×1.

    ``cnn(10, (32, 32, 3), (8, 16), norm=BatchNorm)`` is the course's worked example: CONV3-8
    (224 params) → LeakyReLU → POOL-2 → BatchNorm (16) → CONV3-16 (1,168) → LeakyReLU → POOL-2
    → FC-10 (10,250). ``impl`` goes to the convolutions and pools, as in :func:`lenet5`.

    Shapes: (B, H, W, C) → (B, n_classes).
    """
    h, w, _ = _check_image_shape("cnn", input_shape)
    layers: list = []
    for i, c in enumerate(channels):
        if i and norm is not None:
            layers.append(norm())
        layers += [Conv2D(c, 3, impl=impl), activation]
        if min(h, w) >= 2:
            layers.append(MaxPool2D(2, impl=impl))
            h, w = h // 2, w // 2
    layers.append(Flatten())
    for d in hidden:
        layers += [Dense(d), activation]
    return serial(*layers, Dense(n_classes))


VGGConfig = Sequence[Union[int, str]]

#: Simonyan & Zisserman 2015, table 1: ints are CONV3 widths, 'M' a 2×2 max pool.
VGG_CONFIGS: dict[str, tuple] = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg13": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"),
    "vgg_small": (32, 32, "M", 64, 64, "M"),
}


def vgg(config: str | VGGConfig = "vgg_small", n_classes: int = 10, fc: Sequence[int] = (128,),
        activation: Activation = relu, norm: Callable[[], Module] | None = None,
        impl: str = "auto") -> Module:
    """A VGG network: stacks of 3×3 'SAME' convolutions (two 3×3 see 5×5, three see 7×7, with
    fewer parameters than one big filter), each block closed by a 2×2 max pool, then dense
    layers ``fc`` and the logits. ``norm`` (e.g. BatchNorm) goes after each convolution.

    ``vgg('vgg16', 1000, fc=(4096, 4096))`` on 224×224×3 is VGG-16 (138,357,544 parameters);
    the default ``vgg_small`` (32-32-M-64-64-M, FC-128) suits 8×8 to 32×32 images.
    ``impl`` goes to the convolutions and pools, as in :func:`lenet5`.

    Shapes: (B, H, W, C) → (B, n_classes); H and W must survive the pools.
    """
    if isinstance(config, str):
        if config not in VGG_CONFIGS:
            raise ValueError(f"vgg: unknown config {config!r}; known: {', '.join(VGG_CONFIGS)}")
        config = VGG_CONFIGS[config]
    layers: list = []
    for item in config:
        if item == "M":
            layers.append(MaxPool2D(2, impl=impl))
        elif isinstance(item, int) and item > 0:
            layers += [Conv2D(item, 3, impl=impl)] + ([norm()] if norm is not None else []) + [activation]
        else:
            raise ValueError(f"vgg: config entries are positive ints or 'M', got {item!r}")
    layers.append(Flatten())
    for d in fc:
        layers += [Dense(d), activation]
    return serial(*layers, Dense(n_classes))


def add_channel_axis(x: jax.Array) -> jax.Array:
    """(B, L) → (B, L, 1); (B, L, C) unchanged: lets 1-D models take plain feature vectors."""
    return x[..., None] if x.ndim == 2 else x


def cnn1d(n_classes: int = 10, channels: int = 25, depth: int = 3, kernel_size: int = 5,
          stride: int = 2, activation: Activation = relu) -> Module:
    """A 1-D CNN for MNIST-1D (Greydanus 2020's baseline): ``depth`` blocks of Conv1D(channels,
    5, stride 2, padding 1) → ReLU, then a dense layer of logits on the flattened features.
    On length-40 inputs the lengths go 40 → 19 → 9 → 4.

    Shapes: (B, L) or (B, L, C) → (B, n_classes).
    """
    layers: list = [add_channel_axis]
    for _ in range(depth):
        layers += [Conv1D(channels, kernel_size, stride=stride, padding=1), activation]
    return serial(*layers, Flatten(), Dense(n_classes))
