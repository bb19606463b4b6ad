"""Which formulation of LeNet-5 trains fastest on XLA:CPU? One SGD step of the benchmark's
LeNet-5 (28×28×1, batch 128, SAME conv1, ReLU, 2×2 pooling) written several ways:

- ``conv+window``: ``lax.conv_general_dilated`` (NHWC, HWIO) and ``lax.reduce_window`` pooling
  (what flax.linen does; the max-pool gradient is XLA's select-and-scatter);
- ``conv+reshape``: the same convolutions, pooling as a reshape to (B, H/2, 2, W/2, 2, C) and a
  max (or mean) over the two window axes, whose gradient is an elementwise mask;
- ``im2col+reshape``: each convolution as patches (``conv_general_dilated_patches``) @ kernel,
  one 2-D matmul of (B·H·W, k·k·C_in) by (k·k·C_in, C_out);
- ``nchw+reshape``: the convolutions in NCHW/OIHW layout (PyTorch's);
- ``slices+reshape``: im2col built from kh·kw shifted slices concatenated on the channel axis
  (B, H, W, kh·kw·C_in), then one 2-D matmul by the kernel reshaped to (kh·kw·C_in, C_out);
- ``shift1+reshape``: the first convolution (C_in = 1) as 25 fused shifted multiply-adds
  (``shifted_conv``), the second by ``lax``, reshape pooling.

- ``jdl.kernels``: what ``jdl.models.lenet5(impl='auto')`` runs: ``jdl.kernels.conv.fast_conv``
  and ``jdl.kernels.pooling.fast_max_pool`` with ``impl='auto'`` (on CPU: the shifted sum for
  conv1, lax for conv2, the reshape max pool; average pooling is reduce_window).

``python -m benchmarks.conv_variants [--tanh] [--avg]`` prints ms/step (wall and CPU) for each; the findings are in
benchmarks/NOTES.md.
"""

from __future__ import annotations

import statistics
import time

import numpy as np


def _pool_window(x, kind, jdl_kernels=False):
    import jax
    import jax.numpy as jnp

    if kind == "max" and jdl_kernels:
        from jdl.kernels.pooling import fast_max_pool

        return fast_max_pool(x, 2, impl="auto")
    if kind == "max":
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    return jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "VALID") / 4


def _pool_reshape(x, kind, nchw=False):
    b, h, w, c = x.shape if not nchw else (x.shape[0], x.shape[2], x.shape[3], x.shape[1])
    if nchw:
        x = x.reshape(b, c, h // 2, 2, w // 2, 2)  # (B, C, H/2, 2, W/2, 2)
        axes = (3, 5)
    else:
        x = x.reshape(b, h // 2, 2, w // 2, 2, c)  # (B, H/2, 2, W/2, 2, C)
        axes = (2, 4)
    return x.max(axes) if kind == "max" else x.mean(axes)


def shifted_conv(x, w, pad):
    """y[b,h,w,o] = Σ_{i,j,c} x[b,h+i,w+j,c]·w[i,j,c,o] as kh·kw·C_in shifted multiply-adds that
    XLA fuses into one loop (fast when kh·kw·C_in is small: LeNet's first layer has C_in = 1);
    its gradients are XLA's own convolution gradients (a custom VJP)."""
    import jax
    import jax.numpy as jnp

    dn = ("NHWC", "HWIO", "NHWC")

    @jax.custom_vjp
    def conv(x, w):
        kh, kw, cin, _ = w.shape
        if pad == "SAME":
            x = jnp.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
        h, ww = x.shape[1] - kh + 1, x.shape[2] - kw + 1
        return sum(x[:, i:i + h, j:j + ww, c:c + 1] * w[i, j, c][None, None, None, :]  # (B, H, W, C_out)
                   for i in range(kh) for j in range(kw) for c in range(cin))

    def fwd(x, w):
        return conv(x, w), (x, w)

    def bwd(res, g):
        x, w = res
        _, vjp = jax.vjp(lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), pad, dimension_numbers=dn), x, w)
        return vjp(g)

    conv.defvjp(fwd, bwd)
    return conv(x, w)


def _conv(x, w, pad, layout):
    import jax

    if layout == "jdl":
        from jdl.kernels.conv import fast_conv

        return fast_conv(x, w, padding=pad, impl="auto")
    if layout == "shift1" and w.shape[2] == 1:
        return shifted_conv(x, w, pad)
    if layout == "nchw":
        return jax.lax.conv_general_dilated(x, w.transpose(3, 2, 0, 1), (1, 1), pad,
                                            dimension_numbers=("NCHW", "OIHW", "NCHW"))
    if layout == "slices":
        kh, kw, cin, cout = w.shape
        if pad == "SAME":
            x = jax.numpy.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
        b, hp, wp, _ = x.shape
        h, ww = hp - kh + 1, wp - kw + 1
        cols = [x[:, i:i + h, j:j + ww, :] for i in range(kh) for j in range(kw)]  # kh·kw × (B, H, W, C_in)
        p = jax.numpy.concatenate(cols, axis=-1)  # (B, H, W, kh·kw·C_in), features ordered (kh, kw, C_in)
        return (p.reshape(b * h * ww, kh * kw * cin) @ w.reshape(kh * kw * cin, cout)).reshape(b, h, ww, cout)
    if layout == "im2col":
        kh, kw, cin, cout = w.shape
        p = jax.lax.conv_general_dilated_patches(x, (kh, kw), (1, 1), pad,
                                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
        b, h, ww, k = p.shape  # (B, H, W, C_in·kh·kw), features ordered (C_in, kh, kw)
        wm = w.transpose(2, 0, 1, 3).reshape(k, cout)  # (C_in·kh·kw, C_out)
        return (p.reshape(b * h * ww, k) @ wm).reshape(b, h, ww, cout)
    return jax.lax.conv_general_dilated(x, w, (1, 1), pad, dimension_numbers=("NHWC", "HWIO", "NHWC"))


VARIANTS = ("conv+window", "conv+reshape", "im2col+reshape", "nchw+reshape", "slices+reshape",
            "shift1+reshape", "jdl.kernels")


def make_step(variant: str, pool: str = "max", act: str = "relu"):
    """A jitted SGD step ``step(params, x, y) -> params`` of LeNet-5 written as ``variant``."""
    import jax
    import jax.numpy as jnp

    layout = {"conv+window": "nhwc", "conv+reshape": "nhwc", "im2col+reshape": "im2col",
              "nchw+reshape": "nchw", "slices+reshape": "slices", "shift1+reshape": "shift1",
              "jdl.kernels": "jdl"}[variant]
    nchw = layout == "nchw"

    def pooled(h):
        if variant.endswith("+window") or layout == "jdl":
            return _pool_window(h, pool, jdl_kernels=layout == "jdl")
        return _pool_reshape(h, pool, nchw)

    def bias(h, b):
        return h + (b[None, :, None, None] if nchw else b[None, None, None, :])

    def forward(p, x):
        fn = jnp.tanh if act == "tanh" else jax.nn.relu
        h = pooled(fn(bias(_conv(x, p[0]["w"], "SAME", layout), p[0]["b"])))
        h = pooled(fn(bias(_conv(h, p[1]["w"], "VALID", layout), p[1]["b"])))
        if nchw:
            h = h.transpose(0, 2, 3, 1)  # (B, 5, 5, 16): the NHWC flattening order
        h = h.reshape(h.shape[0], -1)  # (B, 400)
        for i, l in enumerate(p[2:]):
            h = h @ l["w"] + l["b"][None, :]
            h = fn(h) if i < 2 else h
        return h

    def loss(p, x, y):
        logp = jax.nn.log_softmax(forward(p, x))
        return -jnp.take_along_axis(logp, y[:, None], axis=1).mean()

    def step(p, x, y):
        g = jax.grad(loss)(p, x, y)
        return jax.tree.map(lambda a, b: a - 1e-3 * b, p, g)

    return jax.jit(step, donate_argnums=0), forward


def run(quick: bool = False, seed: int = 0, pool: str = "max", variants=VARIANTS, act: str = "relu") -> dict:
    """ms/step (wall, CPU) of every variant, and the largest output difference from the first."""
    import jax
    import jax.numpy as jnp

    from benchmarks.workloads import lenet5

    rng = np.random.default_rng(seed)
    shapes = [(5, 5, 1, 6), (5, 5, 6, 16), (400, 120), (120, 84), (84, 10)]
    layers = [{"w": (rng.standard_normal(s) / np.sqrt(np.prod(s[:-1]))).astype(np.float32),
               "b": np.zeros(s[-1], np.float32)} for s in shapes]
    x, y = lenet5.data(seed)
    if quick:
        x, y = x[:8], y[:8]
    x_nchw = x.transpose(0, 3, 1, 2)
    n, blocks = (2, 2) if quick else (10, 5)
    out, ref = {}, None
    for variant in variants:
        step, forward = make_step(variant, pool, act)
        xv = jnp.asarray(x_nchw if variant.startswith("nchw") else x)
        params = jax.tree.map(jnp.asarray, layers)
        logits = np.asarray(jax.jit(forward)(params, xv))
        ref = logits if ref is None else ref
        params = step(params, xv, y)
        jax.block_until_ready(params)
        wall, cpu = [], []
        for _ in range(blocks):
            t, c = time.perf_counter(), time.process_time()
            for _ in range(n):
                params = step(params, xv, y)
            jax.block_until_ready(params)
            wall.append((time.perf_counter() - t) * 1e3 / n)
            cpu.append((time.process_time() - c) * 1e3 / n)
        out[variant] = {"ms": statistics.median(wall), "cpu_ms": statistics.median(cpu),
                        "max_abs_diff": float(np.max(np.abs(logits - ref)))}
    return {"pool": pool, "act": act, "batch": int(x.shape[0]), "variants": out}


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv, pool="avg" if "--avg" in sys.argv else "max",
                         act="tanh" if "--tanh" in sys.argv else "relu"), indent=1))
