"""A small residual backbone that returns feature maps at several strides, for the heads of the
single-shot detectors (YOLO's grid reads one map, SSD's anchors several).

A detector's CNN is a classifier without its pooling and dense layers: the convolutions keep
the spatial layout, so cell (i, j) of a stride-s map sees the image around pixel
((j + ½)·s, (i + ½)·s) and a convolutional head predicts boxes there — the OverFeat idea of
applying a CNN "convolutionally". SSD reads boxes off maps of several resolutions (small
objects from the fine map, large ones from the coarse map) and uses no fully connected layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import jax

from jdl.core import Module, fold_in, shape_struct
from jdl.models.resnet import basic_block, batch_norm
from jdl.nn.activations import relu
from jdl.nn.combinators import as_module, child_names, serial
from jdl.nn.conv import Conv2D
from jdl import init as initializers


@dataclass(frozen=True)
class BackboneConfig:
    """A stride-2 3×3 stem with ``widths[0]`` channels, then one stage per later width, each
    ``blocks`` ResNet basic blocks, the first with stride 2: stage k outputs stride 2^(k+1)."""
    widths: tuple = (16, 32, 64, 128)
    blocks: int = 1


def taps(*stages: Module | Any) -> Module:
    """Stages applied in sequence, every stage's output kept (a feature pyramid's bottom-up path):

        f_1 = S_1(x),  f_k = S_k(f_{k−1}),  y = (f_1, …, f_n).

    Params ``{'0_serial': …, '1_serial': …}`` as in ``serial``. Shapes: x → tuple of the n outputs.
    """
    if not stages:
        raise ValueError("taps: needs at least one stage")
    mods = tuple(as_module(m) for m in stages)
    names = child_names(mods)

    def init(key, x):
        params, state = {}, {}
        x = shape_struct(x)
        for i, (n, m) in enumerate(zip(names, mods)):
            params[n], state[n] = m.init(jax.random.fold_in(key, i), x)
            x = jax.eval_shape(lambda p, s, x, m=m: m.apply(p, s, x)[0], params[n], state[n], x)
        return params, state

    def apply(params, state, x, *, key=None, train=False):
        outs, new_state = [], {}
        for i, (n, m) in enumerate(zip(names, mods)):
            x, new_state[n] = m.apply(params[n], state.get(n, {}), x, key=fold_in(key, i), train=train)
            outs.append(x)
        return tuple(outs), new_state

    return Module(init, apply, "taps", mods)


def backbone(config: BackboneConfig = BackboneConfig()) -> Module:
    """The backbone: stem conv3×3/2 → BN → ReLU, then stages of ``basic_block``s
    (y = relu(F(x) + x), ``jdl.models.resnet``), each halving H and W.

    Shapes: (B, H, W, 3) → a tuple of len(widths) maps, map k of shape
    (B, H/2^(k+1), W/2^(k+1), widths[k]); for 64×64 images and 4 widths: strides 2, 4, 8, 16.
    """
    widths = tuple(config.widths)
    if len(widths) < 2 or config.blocks < 1 or min(widths) < 1:
        raise ValueError(f"backbone: need at least two positive widths and blocks >= 1, got {config}")
    stem = serial(Conv2D(widths[0], 3, stride=2, padding=1, use_bias=False, w_init=initializers.he_normal),
                  batch_norm(), relu)
    stages = [stem]
    for c_out in widths[1:]:
        blocks = [basic_block(c_out, 2, projection=True)] + [basic_block(c_out) for _ in range(config.blocks - 1)]
        stages.append(serial(*blocks))
    return taps(*stages)


def strides(config: BackboneConfig) -> tuple[int, ...]:
    """The stride of each of the backbone's maps: (2, 4, 8, …)."""
    return tuple(2 ** (k + 1) for k in range(len(config.widths)))


def conv_head(width: int, d_out: int, prior_bias: float = 0.0) -> Module:
    """A convolutional predictor, no dense layer, so the output at cell (i, j) predicts for that
    cell: conv3×3(d_out) (SSD's 3×3 predictors) when ``width`` is 0, else
    conv3×3(width) → ReLU → conv3×3(d_out). ``prior_bias`` initializes the last bias.
    Shapes: (B, H_f, W_f, C) → (B, H_f, W_f, d_out)."""
    out = Conv2D(d_out, 3, w_init=initializers.normal(0.01), b_init=initializers.constant(prior_bias))
    if width == 0:
        return out
    return serial(Conv2D(width, 3, w_init=initializers.he_normal), relu, out)


def level_names(n: int) -> Sequence[str]:
    """Readable keys for per-level heads: ('level0', 'level1', …)."""
    return tuple(f"level{k}" for k in range(n))
