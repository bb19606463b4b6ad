"""Inception (GoogLeNet, Szegedy et al. 2015): parallel filters of several sizes in one block.

An Inception block looks at its input through 1×1, 3×3 and 5×5 convolutions and a 3×3 max
pool side by side (different receptive fields at once) and concatenates the results along the
channels. 1×1 convolutions reduce the width before the expensive 3×3 and 5×5 ones, and after
the pool, so the block stays cheap: a 1×1 convolution is a dense layer applied at every pixel.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from jdl.core import Module
from jdl.nn.activations import relu
from jdl.nn.auxiliary import with_auxiliary_heads
from jdl.nn.combinators import parallel, serial
from jdl.nn.conv import Conv2D
from jdl.nn.dropout import Dropout
from jdl.nn.linear import Dense
from jdl.nn.pooling import GlobalAvgPool, MaxPool2D


def concat_channels(ys: Sequence[jax.Array]) -> jax.Array:
    """Concatenate the branches' feature maps along the channels: C = Σ_i C_i.

    Shapes: a tuple of (B, H, W, C_i) → (B, H, W, Σ C_i)."""
    return jnp.concatenate(ys, axis=-1)


def inception_block(c1: int, c3_reduce: int, c3: int, c5_reduce: int, c5: int, pool_proj: int,
                    activation: Callable[[jax.Array], jax.Array] = relu) -> Module:
    """One Inception block (GoogLeNet's "inception (3a)" is (64, 96, 128, 16, 32, 32)):

        y = concat( φ(conv1×1_{c1}(x)),
                    φ(conv3×3_{c3}(φ(conv1×1_{c3_reduce}(x)))),
                    φ(conv5×5_{c5}(φ(conv1×1_{c5_reduce}(x)))),
                    φ(conv1×1_{pool_proj}(maxpool3×3_{s=1}(x))) )

    All branches keep H and W ('SAME'), so they can be stacked along the channels.

    Shapes: (B, H, W, C_in) → (B, H, W, c1 + c3 + c5 + pool_proj).
    """
    return serial(
        parallel(
            serial(Conv2D(c1, 1), activation),
            serial(Conv2D(c3_reduce, 1), activation, Conv2D(c3, 3), activation),
            serial(Conv2D(c5_reduce, 1), activation, Conv2D(c5, 5), activation),
            serial(MaxPool2D(3, 1, "SAME"), Conv2D(pool_proj, 1), activation),
        ),
        concat_channels,
    )


def googlenet_small(n_classes: int = 10, width: int = 16) -> Module:
    """A small GoogLeNet for 8×8 to 32×32 images: a 3×3 stem, two Inception blocks, a 2×2
    max pool, two more Inception blocks, global average pooling and the logits. The blocks
    keep GoogLeNet's 3a/3b/4a proportions, scaled so that ``width`` plays the role of 64.

    Shapes: (B, H, W, C) → (B, n_classes); H, W ≥ 2.
    """
    if not isinstance(width, int) or width < 4 or width % 4:
        raise ValueError(f"googlenet_small: width must be a positive multiple of 4, got {width!r}")
    u = width // 4  # GoogLeNet's 16 channels
    return serial(
        Conv2D(3 * width, 3, impl="auto"), relu,  # GoogLeNet feeds 3a with 192 = 3·64 channels
        inception_block(4 * u, 6 * u, 8 * u, u, 2 * u, 2 * u),  # 3a: 256 channels at width 64
        inception_block(8 * u, 8 * u, 12 * u, 2 * u, 6 * u, 4 * u),  # 3b: 480
        MaxPool2D(2, impl="auto"),  # jdl.kernels.pooling's rule: windows tile the input
        inception_block(12 * u, 6 * u, 13 * u, u, 3 * u, 4 * u),  # 4a: 512
        GlobalAvgPool(),
        Dense(n_classes),
    )


def auxiliary_classifier(n_classes: int, width: int = 16) -> Module:
    """GoogLeNet's auxiliary classifier, scaled like ``googlenet_small`` (``width`` plays 64):

        avg pool → 1×1 conv (2·width = 128 filters) + ReLU → FC (16·width = 1024) + ReLU
        → dropout 0.7 → FC n_classes

    The paper pools 14×14 maps with a 5×5 window, stride 3, to 4×4; the small network's maps
    (4×4 to 32×32) are pooled globally, so the 1×1 convolution on the pooled 1×1 map is a Dense.

    Shapes: (B, H, W, C) → (B, n_classes).
    """
    return serial(GlobalAvgPool(), Dense(2 * width), relu, Dense(16 * width), relu, Dropout(0.7),
                  Dense(n_classes))


def googlenet_small_aux(n_classes: int = 10, width: int = 16) -> Module:
    """``googlenet_small`` with two auxiliary classifiers (``auxiliary_classifier``), on the
    outputs of the blocks 3b and 4a (the paper taps 4a and 4d, two of the deeper blocks):

        train=True:   (logits, aux1 logits, aux2 logits)    → ``jdl.losses.auxiliary_loss``
        train=False:  logits                                 (= googlenet_small on params['net'])

    Train with ``fit(model, auxiliary_loss(softmax_cross_entropy), ...)``: the loss is
    ℓ = ℓ_main + 0.3·(ℓ_aux1 + ℓ_aux2), as in the paper. ``params['net']`` is the plain
    ``googlenet_small``'s params, for deployment without the heads.

    Shapes: (B, H, W, C) → (B, n_classes), three times in training.
    """
    net = googlenet_small(n_classes, width)  # layers: stem conv, relu, 3a, 3b, pool, 4a, gap, dense
    return with_auxiliary_heads(net, {3: auxiliary_classifier(n_classes, width),
                                      5: auxiliary_classifier(n_classes, width)})
