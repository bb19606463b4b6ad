"""The U-Net ε-network: output shape equals the input's, each example's ε̂ depends on that
example alone (GroupNorm, not BatchNorm), the parameter count equals a count by hand, the whole
forward pass equals a PyTorch re-implementation with the same weights (time embedding by its
formula in numpy). Its training on digits (the DDPM loss falls) is tested through ``jdl train
--model=ddpm`` in tests/test_cli_generative.py."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.core import param_count
from jdl.models.unet import UNet, res_block


def _random_params(m, x, seed, dtype=np.float32):
    """Params of ``m`` for ``x`` with every leaf drawn from N(0, 0.3²) in numpy (the zero-initialized
    output conv and biases too): shapes by ``eval_shape``, no random program compiled per shape."""
    structs = jax.eval_shape(m.init, jax.random.key(0), x)[0]
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda a: (0.3 * rng.normal(size=a.shape)).astype(dtype), structs)


@pytest.mark.parametrize("shape, channels", [((3, 8, 8, 1), (8, 16)), ((2, 12, 16, 3), (8, 16, 16))])
def test_output_shape_equals_input_and_examples_are_independent(shape, channels):
    m = UNet(50, channels, groups=4)
    x = jnp.asarray(np.random.default_rng(0).normal(size=shape), jnp.float32)
    params = _random_params(m, x, 2)
    t = jnp.arange(1, shape[0] + 1) * 7
    apply = jax.jit(lambda p, x, t: m.apply(p, {}, x, t=t)[0])
    y = apply(params, x, t)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert jax.eval_shape(apply, params, x, t).shape == x.shape
    one = apply(params, x[1:2], t[1:2])  # example 1 alone gives the same ε̂
    np.testing.assert_allclose(y[1:2], one, rtol=1e-5, atol=1e-5)
    other_t = apply(params, x, t + 1)
    assert np.max(np.abs(np.asarray(other_t - y))) > 1e-3  # the step changes the prediction


def test_untrained_unet_predicts_zero_noise():
    m = UNet(10, (8,))
    x = jnp.ones((2, 4, 4, 1))
    params, _ = m.init(jax.random.key(0), x)
    assert not np.any(params["out"]["w"]) and np.std(params["stem"]["w"]) > 0.1  # LeCun normal elsewhere
    np.testing.assert_array_equal(jax.jit(lambda p: m.apply(p, {}, x, t=jnp.array([1, 10]))[0])(params), 0.0)  # the last conv starts at 0


def test_parameter_count_equals_the_count_by_hand():
    conv = lambda k, ci, co: k * k * ci * co + co  # noqa: E731
    dense = lambda a, b: a * b + b  # noqa: E731
    block = lambda ci, co, de: (2 * ci + conv(3, ci, co) + dense(de, co) + 2 * co + conv(3, co, co)  # noqa: E731
                                + (conv(1, ci, co) if ci != co else 0))
    c1, c2, d_time, de, C = 16, 32, 16, 64, 1
    want = (dense(d_time, de) + dense(de, de) + conv(3, C, c1)
            + block(c1, c1, de) + conv(3, c1, c1) + block(c1, c2, de)        # down path
            + block(c2, c2, de)                                             # bottleneck
            + block(c2 + c2, c2, de) + conv(4, c2, c2) + block(c2 + c1, c1, de)  # up path, ConvTranspose
            + 2 * c1 + conv(3, c1, C))                                      # out norm and conv
    params, _ = jax.eval_shape(UNet(100, (c1, c2)).init, jax.random.key(0), jnp.zeros((1, 8, 8, C)))
    assert param_count(params) == want == 110_641


def _torch_unet(params, x, t, channels, d_time, groups):
    """The same network written with torch.nn.functional, NCHW, from the jdl params."""
    import torch
    import torch.nn.functional as F

    P = jax.tree.map(lambda a: torch.tensor(np.asarray(a), dtype=torch.float64), params)
    conv_w = lambda w: w.permute(3, 2, 0, 1)  # noqa: E731  HWIO → OIHW
    gn = lambda p, h: F.group_norm(h, math.gcd(groups, h.shape[1]), p["gamma"], p["beta"], eps=1e-5)  # noqa: E731

    def block(p, h, e):
        z = F.conv2d(F.silu(gn(p["norm_1"], h)), conv_w(p["conv_1"]["w"]), p["conv_1"]["b"], padding=1)
        z = z + (F.silu(e) @ p["time"]["w"] + p["time"]["b"])[:, :, None, None]
        z = F.conv2d(F.silu(gn(p["norm_2"], z)), conv_w(p["conv_2"]["w"]), p["conv_2"]["b"], padding=1)
        return z + (F.conv2d(h, conv_w(p["skip"]["w"]), p["skip"]["b"]) if "skip" in p else h)

    i = np.arange(d_time)
    angle = np.asarray(t)[:, None] / 10000 ** (2 * (i // 2) / d_time)
    emb = torch.tensor(np.where(i % 2 == 0, np.sin(angle), np.cos(angle)))  # sin(t·ω_i), cos(t·ω_i)
    e = F.silu(emb @ P["time_1"]["w"] + P["time_1"]["b"]) @ P["time_2"]["w"] + P["time_2"]["b"]
    h = F.conv2d(torch.tensor(np.asarray(x), dtype=torch.float64).permute(0, 3, 1, 2), conv_w(P["stem"]["w"]),
                 P["stem"]["b"], padding=1)
    skips = []
    for lvl in range(len(channels)):
        h = block(P[f"down{lvl}"], h, e)
        skips.append(h)
        if lvl < len(channels) - 1:
            h = F.conv2d(h, conv_w(P[f"downsample{lvl}"]["w"]), P[f"downsample{lvl}"]["b"], stride=2, padding=1)
    h = block(P["mid"], h, e)
    for lvl in reversed(range(len(channels))):
        h = block(P[f"up{lvl}"], torch.cat([h, skips[lvl]], dim=1), e)
        if lvl > 0:
            up = P[f"upsample{lvl}"]
            h = F.conv_transpose2d(h, up["w"].permute(2, 3, 0, 1), up["b"], stride=2, padding=1)
    h = F.silu(gn(P["out_norm"], h))
    return F.conv2d(h, conv_w(P["out"]["w"]), P["out"]["b"], padding=1).permute(0, 2, 3, 1).numpy()


@pytest.mark.torch
def test_forward_equals_a_pytorch_reimplementation():
    pytest.importorskip("torch")
    channels, d_time, groups = (8, 12), 6, 4
    m = UNet(40, channels, d_time=d_time, groups=groups)
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 2))
    params = _random_params(m, jnp.zeros((2, 8, 8, 2)), 3, np.float64)
    t = jnp.array([3, 40])
    with jax.enable_x64(True):
        p64 = params
        y = jax.jit(lambda p, x: m.apply(p, {}, x, t=t)[0])(p64, x)
        # the embedding table is float32 (jdl.nn.sinusoidal_positions), the rest float64
        np.testing.assert_allclose(y, _torch_unet(params, x, t, channels, d_time, groups), rtol=1e-6, atol=1e-7)
        # one block alone (8 → 12 channels), by hand in numpy: GroupNorm, SiLU, the time term, a 1×1 skip
        blk = p64["down1"]
        h, e = np.random.default_rng(0).normal(size=(2, 4, 4, 8)), np.full((2, 32), 0.1)
        want = _numpy_block(blk, np.asarray(h), np.asarray(e))
        np.testing.assert_allclose(jax.jit(res_block, static_argnums=3)(blk, h, e, 8), want, rtol=1e-9, atol=1e-9)


def _numpy_block(p, x, e):
    silu = lambda z: z / (1 + np.exp(-z))  # noqa: E731

    def gn(q, h):  # gcd(8, C) groups: 8 of 1 channel for C = 8, 4 of 3 for C = 12
        b, hh, ww, c = h.shape
        g = h.reshape(b, hh, ww, math.gcd(8, c), -1)
        mu, var = g.mean((1, 2, 4), keepdims=True), g.var((1, 2, 4), keepdims=True)
        return ((g - mu) / np.sqrt(var + 1e-5)).reshape(h.shape) * q["gamma"] + q["beta"]

    def conv3(q, h):
        hp = np.pad(h, ((0, 0), (1, 1), (1, 1), (0, 0)))
        out = sum(hp[:, a:a + h.shape[1], b:b + h.shape[2], :] @ q["w"][a, b] for a in range(3) for b in range(3))
        return out + q["b"]

    z = conv3(p["conv_1"], silu(gn(p["norm_1"], x))) + (silu(e) @ p["time"]["w"] + p["time"]["b"])[:, None, None, :]
    z = conv3(p["conv_2"], silu(gn(p["norm_2"], z)))
    return z + x @ p["skip"]["w"][0, 0] + p["skip"]["b"]


def test_unet_errors():
    m = UNet(10, (8, 16, 16))
    with pytest.raises(ValueError, match=r"UNet: H=6 and W=8 must be divisible by 2\^\(L−1\) = 4 for L=3 levels"):
        m.init(jax.random.key(0), jnp.zeros((1, 6, 8, 1)))
    params = _random_params(m, jnp.zeros((1, 8, 8, 1)), 0)
    with pytest.raises(TypeError, match=r"UNet: apply needs the diffusion steps"):
        m.apply(params, {}, jnp.zeros((1, 8, 8, 1)))
    with pytest.raises(ValueError, match=r"UNet: t must have shape \(B,\) = \(1,\), got \(2,\)"):
        m.apply(params, {}, jnp.zeros((1, 8, 8, 1)), t=jnp.array([1, 2]))
    with pytest.raises(ValueError, match="UNet: expected an input of rank 4"):
        m.init(jax.random.key(0), jnp.zeros((8, 8, 1)))
    with pytest.raises(ValueError, match="UNet: channels must be a positive int, got 0"):
        UNet(10, (8, 0))
