"""A small U-Net ε-network for images (Ronneberger et al. 2015, as Ho et al. 2020 use it for
DDPM): a down path of residual blocks that halves the resolution between levels, a bottleneck,
an up path that doubles it again and concatenates the down path's activation of the same
resolution (the skip connections), and the diffusion step t fed into every block.

    e = W_2·silu(W_1·time_embedding(t) + b_1) + b_2                        (shared time features)
    block(x, e):  h = conv_1(silu(GN_1(x)))
                  h = h + (W_t·silu(e) + b_t)          added to every pixel: the time enters additively
                  h = conv_2(silu(GN_2(h)))
                  y = h + skip(x)                      (skip: a 1×1 conv when C changes, else x)

silu(z) = z·σ(z) (Ho et al.'s swish), GN = ``jdl.nn.GroupNorm`` (per example, so a sample's
ε̂ does not depend on the rest of the batch). Down-sampling is a 3×3 convolution of stride 2,
up-sampling a 4×4 ``ConvTranspose2D`` of stride 2; the last convolution starts at zero, so the
untrained network predicts ε̂ = 0 (loss 1). The generative-models part of the course (diffusion)
is the reference; Ho et al.'s network adds self-attention at 16×16, left out at these sizes.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp

from jdl import init as initializers
from jdl.core import Module, Params, PRNGKey, State, check_float, check_rank, leaf, shape_struct
from jdl.models.denoisers import time_embedding
from jdl.nn.activations import sigmoid
from jdl.nn.conv import conv2d
from jdl.nn.conv_transpose import conv_transpose2d
from jdl.nn.linear import dense
from jdl.nn.norm import GroupNorm


def silu(z: jax.Array) -> jax.Array:
    """silu(z) = z·σ(z) (the swish of Ramachandran et al., DDPM's nonlinearity)."""
    return z * sigmoid(z)


def group_norm(params: Params, x: jax.Array, groups: int) -> jax.Array:
    """``jdl.nn.GroupNorm`` with gcd(groups, C) groups (a divisor of every C). Shapes: x (B, H, W, C)."""
    return GroupNorm(math.gcd(groups, x.shape[-1])).apply(params, {}, x)[0]


def _conv(c_in: int, c_out: int, k: int, zero: bool = False) -> Params:
    """Shapes of a k×k convolution's params, filled later by ``_fill``."""
    return {"w": (k, k, c_in, c_out, "zero" if zero else "lecun"), "b": (c_out, "zero")}


def block_shapes(c_in: int, c_out: int, d_e: int) -> Params:
    """The params of one residual block, as (shape…, initializer) leaves: GN_1 (c_in), conv_1
    3×3 c_in → c_out, the time projection d_e → c_out, GN_2 (c_out), conv_2 3×3 c_out → c_out,
    and a 1×1 ``skip`` conv when c_in ≠ c_out."""
    p = {"norm_1": {"gamma": (c_in, "one"), "beta": (c_in, "zero")}, "conv_1": _conv(c_in, c_out, 3),
         "time": {"w": (d_e, c_out, "lecun"), "b": (c_out, "zero")},
         "norm_2": {"gamma": (c_out, "one"), "beta": (c_out, "zero")}, "conv_2": _conv(c_out, c_out, 3)}
    if c_in != c_out:
        p["skip"] = _conv(c_in, c_out, 1)
    return p


def res_block(params: Params, x: jax.Array, e: jax.Array, groups: int) -> jax.Array:
    """One residual block with the time added after its first convolution:

        h = conv_1(silu(GN_1(x))) + (silu(e) W_t + b_t)[:, None, None, :]
        y = conv_2(silu(GN_2(h))) + skip(x)

    Shapes: x (B, H, W, C_in), e (B, d_e) → y (B, H, W, C_out).
    """
    h = conv2d(silu(group_norm(params["norm_1"], x, groups)), params["conv_1"]["w"], params["conv_1"]["b"], padding=1)
    h = h + dense(params["time"], silu(e))[:, None, None, :]  # (B, H, W, C) + (B, 1, 1, C)
    h = conv2d(silu(group_norm(params["norm_2"], h, groups)), params["conv_2"]["w"], params["conv_2"]["b"], padding=1)
    skip = x if "skip" not in params else conv2d(x, params["skip"]["w"], params["skip"]["b"])
    return h + skip


def unet_shapes(c_in: int, channels: Sequence[int], d_time: int) -> Params:
    """Every param of ``UNet`` as (shape…, initializer) leaves (see ``UNet`` for the layout)."""
    d_e, L = 4 * channels[0], len(channels)
    p: Params = {"time_1": {"w": (d_time, d_e, "lecun"), "b": (d_e, "zero")},
                 "time_2": {"w": (d_e, d_e, "lecun"), "b": (d_e, "zero")},
                 "stem": _conv(c_in, channels[0], 3)}
    c = channels[0]
    for i, c_i in enumerate(channels):
        p[f"down{i}"] = block_shapes(c, c_i, d_e)
        c = c_i
        if i < L - 1:
            p[f"downsample{i}"] = _conv(c, c, 3)
    p["mid"] = block_shapes(c, c, d_e)
    for i in reversed(range(L)):
        p[f"up{i}"] = block_shapes(c + channels[i], channels[i], d_e)
        c = channels[i]
        if i > 0:
            p[f"upsample{i}"] = {"w": (4, 4, c, c, "lecun"), "b": (c, "zero")}
    p["out_norm"] = {"gamma": (c, "one"), "beta": (c, "zero")}
    p["out"] = _conv(c, c_in, 3, zero=True)
    return p


def _fill(key: PRNGKey, shapes: Params, dtype: Any) -> Params:
    """Draw each leaf (shape…, kind): 'lecun' normal with fan-in ∏shape[:-1], 'zero', 'one'."""
    leaves, tree = jax.tree.flatten(shapes, is_leaf=lambda s: isinstance(s, tuple))
    out = []
    for i, (*shape, kind) in enumerate(leaves):
        if kind == "lecun":
            out.append(initializers.lecun_normal(jax.random.fold_in(key, i), tuple(shape), dtype))
        else:
            out.append((jnp.ones if kind == "one" else jnp.zeros)(tuple(shape), dtype))
    return jax.tree.unflatten(tree, out)


def UNet(T: int, channels: Sequence[int] = (32, 64), d_time: int | None = None, groups: int = 8) -> Module:
    """A U-Net noise predictor ε_θ(x_t, t) for images, with L = len(channels) levels:

        e    = time features of t (sinusoidal embedding of size d_time → 4·c_1 → 4·c_1)
        h    = stem(x)                                          3×3 conv to c_1
        down: level i = 1 … L: h = block(h, e) → c_i, keep s_i = h; then (i < L) a 3×3 conv of stride 2
        mid:  h = block(h, e)                                   at H/2^{L−1} (the bottleneck)
        up:   level i = L … 1: h = block([h, s_i], e) → c_i;    then (i > 1) ConvTranspose 4×4 stride 2
        ε̂    = out(silu(GN(h)))                                 3×3 conv to C, zero at init

    ``block`` is ``res_block`` (GroupNorm, SiLU, the time added per channel). Inputs with H and W
    divisible by 2^{L−1} fit: 8×8 digits with L ≤ 4, 28×28 MNIST with L ≤ 3.
    ``apply(params, state, x, *, t)`` takes the steps as a keyword, as ``TimeMLP`` does, so
    ``jdl.models.denoisers.eps_fn`` turns it into the ``eps_fn`` of ``jdl.models.diffusion``.

    Shapes: x (B, H, W, C), t (B,) int in 1 … T → ε̂ (B, H, W, C).
    Params: ``time_1``, ``time_2``, ``stem``, ``down{i}``, ``downsample{i}``, ``mid``, ``up{i}``,
    ``upsample{i}``, ``out_norm``, ``out`` (``unet_shapes`` lists them; ``jdl.param_count`` counts).

    Args:
      T: the number of diffusion steps (rows of the embedding table).
      channels: c_1 … c_L, the width of each level. d_time: embedding size (default c_1).
      groups: GroupNorm groups (gcd(groups, C) per layer).
    """
    channels = tuple(channels)
    d_time = channels[0] if d_time is None and channels else d_time
    for name, value in (("T", T), ("d_time", d_time), ("groups", groups), *(("channels", c) for c in channels)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"UNet: {name} must be a positive int, got {value!r}")
    if not channels:
        raise ValueError("UNet: channels must name at least one level, e.g. (32, 64)")
    L = len(channels)

    def check(x: Any) -> None:
        check_rank("UNet", x, (4,), "B, H, W, C")
        h, w = x.shape[1:3]
        if h % 2 ** (L - 1) or w % 2 ** (L - 1):
            raise ValueError(f"UNet: H={h} and W={w} must be divisible by 2^(L−1) = {2 ** (L - 1)} for "
                             f"L={L} levels; use fewer levels (channels) or pad the images")

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        x = shape_struct(x)
        check_float("UNet", x)
        check(x)
        return _fill(key, unet_shapes(x.shape[-1], channels, d_time), x.dtype), {}

    def apply(params: Params, state: State, x: Any, *, t: Any = None, key=None, train=False):
        del key, train
        check(x)
        if t is None:
            raise TypeError("UNet: apply needs the diffusion steps, apply(params, state, x, t=t) with t (B,)")
        if jnp.shape(t) != x.shape[:1]:
            raise ValueError(f"UNet: t must have shape (B,) = {x.shape[:1]}, got {jnp.shape(t)}")
        e = dense(params["time_2"], silu(dense(params["time_1"], time_embedding(t, d_time, T))))  # (B, 4c_1)
        h = conv2d(x, params["stem"]["w"], params["stem"]["b"], padding=1)  # (B, H, W, c_1)
        skips = []
        for i in range(L):
            h = res_block(params[f"down{i}"], h, e, groups)  # (B, H/2^i, W/2^i, c_i)
            skips.append(h)
            if i < L - 1:
                h = conv2d(h, params[f"downsample{i}"]["w"], params[f"downsample{i}"]["b"], stride=2, padding=1)
        h = res_block(params["mid"], h, e, groups)
        for i in reversed(range(L)):
            h = res_block(params[f"up{i}"], jnp.concatenate([h, skips[i]], axis=-1), e, groups)  # (B, ., ., c_i)
            if i > 0:
                up = params[f"upsample{i}"]
                h = conv_transpose2d(h, up["w"], up["b"], stride=2, padding=1)  # doubles H and W
        h = silu(group_norm(params["out_norm"], h, groups))
        return conv2d(h, params["out"]["w"], params["out"]["b"], padding=1), state

    return leaf(init, apply, "unet", accepts={"t"})
