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

Params are keyed by stage names that follow torchvision's (``keys='named'``, the default):

    conv1, bn1, relu, [maxpool,] layer1/block0/branch/{conv1, bn1, relu1, conv2, bn2},
    layer2/block0/shortcut/{conv, bn}, …, avgpool, fc

(torchvision's ``layer2.0.conv1`` is ``layer2/block0/branch/conv1`` here and its
``layer2.0.downsample.0`` is ``layer2/block0/shortcut/conv``). ``keys='positional'`` builds the
layout jdl used before (``4_serial/0_residual/0_serial/0_conv2d``), for checkpoints saved with
it; given the same weights both compute the same function.
"""

from __future__ import annotations

from typing import Callable, Sequence

from jdl import init as initializers
from jdl.core import Module
from jdl.nn.activations import relu
from jdl.nn.combinators import as_module, named, residual, serial
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


KEYS = ("named", "positional")


def _check_keys(where: str, keys: str) -> None:
    if keys not in KEYS:
        raise ValueError(f"{where}: keys must be 'named' or 'positional', got {keys!r}")


def _layer_names(kinds: Sequence[str]) -> list[str]:
    """The named keys of a branch's layers, counted per kind as in torchvision:
    ['conv2d', 'batchnorm', 'relu', 'conv2d'] → ['conv1', 'bn1', 'relu1', 'conv2']."""
    short, count, out = {"conv2d": "conv", "batchnorm": "bn"}, {}, []
    for kind in kinds:
        kind = short.get(kind, kind)
        count[kind] = count.get(kind, 0) + 1
        out.append(f"{kind}{count[kind]}")
    return out


def _finish(layers: list, c_out: int, stride: int, projection: bool, norm: NormFactory,
            shortcut: bool, keys: str) -> Module:
    """The block around its branch F = serial(layers): relu(F(x) + S(x)), relu(F(x) + x), or
    relu(F(x)) without the shortcut; named keys are conv1, bn1, relu1, conv2, … and
    shortcut/{conv, bn}."""
    if keys == "positional":
        body = serial(*layers)
        if not shortcut:
            return serial(body, relu)  # the plain counterpart: y = relu(F(x))
        proj = serial(_conv(c_out, 1, stride), norm()) if projection else None
        return serial(residual(body, proj), relu)  # y = relu(F(x) + x) or relu(F(x) + W_s x)
    mods = [as_module(m) for m in layers]
    body = named("branch", serial(*[named(n, m) for n, m in zip(_layer_names([m.name for m in mods]), mods)]))
    if not shortcut:
        return serial(body, named("relu", relu))
    proj = (named("shortcut", serial(named("conv", _conv(c_out, 1, stride)), named("bn", norm())))
            if projection else None)
    return residual(body, proj, activation=relu)


def basic_block(c_out: int, stride: int = 1, projection: bool = False, norm: NormFactory = batch_norm,
                shortcut: bool = True, keys: str = "named") -> Module:
    """The basic block of ResNet-18/34 and the CIFAR ResNets:

        F(x) = BN(conv3×3(relu(BN(conv3×3_s(x)))));  y = relu(F(x) + x)

    with x replaced by BN(conv1×1_s(x)) when ``projection`` (the width or the stride changes),
    and y = relu(F(x)) when ``shortcut=False`` (the plain network). Named params:
    ``branch/{conv1, bn1, conv2, bn2}`` and ``shortcut/{conv, bn}``.

    Shapes: (B, H, W, C_in) → (B, ⌈H/s⌉, ⌈W/s⌉, c_out).
    """
    _check_keys("basic_block", keys)
    layers = [_conv(c_out, 3, stride), norm(), relu, _conv(c_out, 3), norm()]
    return _finish(layers, c_out, stride, projection, norm, shortcut, keys)


def bottleneck_block(c_mid: int, stride: int = 1, projection: bool = False,
                     norm: NormFactory = batch_norm, shortcut: bool = True, expansion: int = 4,
                     keys: str = "named") -> Module:
    """The bottleneck block of ResNet-50/101/152: a 1×1 convolution reduces the width to
    ``c_mid``, a 3×3 (with the stride) works at that width, and a 1×1 restores
    ``expansion·c_mid`` channels — the same 1×1 reduction trick as Inception:

        F(x) = BN(conv1×1(relu(BN(conv3×3_s(relu(BN(conv1×1(x))))))));  y = relu(F(x) + x)

    Named params: ``branch/{conv1, bn1, conv2, bn2, conv3, bn3}`` and ``shortcut/{conv, bn}``.

    Shapes: (B, H, W, C_in) → (B, ⌈H/s⌉, ⌈W/s⌉, expansion·c_mid).
    """
    _check_keys("bottleneck_block", keys)
    c_out = expansion * c_mid
    layers = [_conv(c_mid, 1), norm(), relu, _conv(c_mid, 3, stride), norm(), relu, _conv(c_out, 1), norm()]
    return _finish(layers, c_out, stride, projection, norm, shortcut, keys)


def resnet(stage_sizes: Sequence[int], widths: Sequence[int], n_classes: int = 1000,
           block: str = "basic", stem: str = "imagenet", norm: NormFactory = batch_norm,
           shortcut: bool = True, keys: str = "named") -> Module:
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
      keys: 'named' (conv1, bn1, layer1/block0/…, fc; the module docstring) or 'positional'
        (jdl's earlier '4_serial/0_residual/…', for checkpoints saved with it).

    Shapes: (B, H, W, C) → (B, n_classes).
    """
    if block not in ("basic", "bottleneck"):
        raise ValueError(f"resnet: block must be 'basic' or 'bottleneck', got {block!r}")
    if stem not in ("imagenet", "cifar"):
        raise ValueError(f"resnet: stem must be 'imagenet' or 'cifar', got {stem!r}")
    if len(stage_sizes) != len(widths) or not all(n >= 1 for n in stage_sizes):
        raise ValueError(f"resnet: need one positive block count per width, got stage_sizes="
                         f"{tuple(stage_sizes)}, widths={tuple(widths)}")
    _check_keys("resnet", keys)
    if stem == "imagenet":
        c = 64
        head = {"conv1": _conv(c, 7, 2), "bn1": norm(), "relu": relu, "maxpool": MaxPool2D(3, 2, padding=1)}
    else:
        c = widths[0]
        head = {"conv1": _conv(c, 3, impl="auto"), "bn1": norm(), "relu": relu}  # RGB stem: jdl.kernels.conv's rule
    make, expansion = (basic_block, 1) if block == "basic" else (bottleneck_block, 4)
    stages = []
    for i, (n_blocks, width) in enumerate(zip(stage_sizes, widths)):
        blocks = []
        for j in range(n_blocks):
            stride = 2 if i > 0 and j == 0 else 1
            c_out = expansion * width
            blocks.append(make(width, stride, stride != 1 or c != c_out, norm, shortcut, keys=keys))
            c = c_out
        stages.append(blocks)
    tail = {"avgpool": GlobalAvgPool(), "fc": Dense(n_classes)}
    if keys == "positional":
        return serial(*head.values(), *[b for blocks in stages for b in blocks], *tail.values())
    layers = [named(f"layer{i + 1}", serial(*[named(f"block{j}", b) for j, b in enumerate(blocks)]))
              for i, blocks in enumerate(stages)]
    return serial(*[named(k, m) for k, m in head.items()], *layers, *[named(k, m) for k, m in tail.items()])


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


def _named_branch(tree: dict) -> dict:
    """A positional branch {'0_conv2d', '1_batchnorm', '2_relu', …} keyed conv1, bn1, relu1, …"""
    keys = sorted(tree, key=lambda k: int(k.split("_")[0]))
    return {n: tree[k] for n, k in zip(_layer_names([k.split("_", 1)[1] for k in keys]), keys)}


def _named_block(tree: dict) -> dict:
    if "0_residual" in tree:  # serial(residual(F, S), relu)
        res = tree["0_residual"]
        out = {"branch": _named_branch(res["0_serial"])}
        if "1_serial" in res:
            out["shortcut"] = {"conv": res["1_serial"]["0_conv2d"], "bn": res["1_serial"]["1_batchnorm"]}
        return out
    return {"branch": _named_branch(tree["0_serial"]), "relu": tree["1_relu"]}  # serial(F, relu)


def named_from_positional(tree: dict, stage_sizes: Sequence[int]) -> dict:
    """A ResNet's params (or state) saved with ``keys='positional'`` ('4_serial/0_residual/…')
    rekeyed for the named layout ('layer1/block0/branch/conv1'): the same arrays, so
    ``resnet(…).apply(named_from_positional(p, sizes), …)`` equals
    ``resnet(…, keys='positional').apply(p, …)``.

    Args: tree, the positional params or state; stage_sizes, the model's blocks per stage.
    Returns: the same leaves under named keys.
    """
    children = sorted(tree, key=lambda k: int(k.split("_")[0]))
    n_blocks = sum(stage_sizes)
    n_stem = len(children) - n_blocks - 2
    if n_stem not in (3, 4) or not children[-1].endswith("_dense"):
        raise ValueError(f"named_from_positional: expected a stem, {n_blocks} blocks (stage_sizes="
                         f"{tuple(stage_sizes)}), a pool and a dense layer; got keys {children}")
    out = {name: tree[k] for name, k in zip(("conv1", "bn1", "relu", "maxpool"), children[:n_stem])}
    blocks = iter(children[n_stem:n_stem + n_blocks])
    for i, size in enumerate(stage_sizes):
        out[f"layer{i + 1}"] = {f"block{j}": _named_block(tree[next(blocks)]) for j in range(size)}
    out["avgpool"], out["fc"] = tree[children[-2]], tree[children[-1]]
    return out
