"""LeNet-5 on 28×28×1, batch 128, softmax cross-entropy, Adam lr 1e-3.

conv 5×5×6 → act → pool 2 → conv 5×5×16 → act → pool 2 → flatten → 120 → act → 84 → act → 10.
The first convolution is SAME-padded (28 → 28, LeCun's 32×32 input) when jdl's model has 400
inputs to its first Dense, VALID (28 → 24) when it has 256; the activation (ReLU, tanh or
sigmoid) and the pooling (max or average) are read off jdl's model by matching its output, so
all three implementations run the same network. The workload is skipped, with the reason, until
``jdl.models.lenet5`` exists.
"""

from __future__ import annotations

import itertools
import os

import numpy as np

from benchmarks.workloads import common

NAME = "lenet5"
BATCH = 128
IMAGE = (28, 28, 1)
CONVS = ((5, 6), (5, 16))  # (kernel size, channels)
DENSE = (120, 84, 10)


def conv_sizes(pad1: str) -> list[int]:
    """Spatial sizes after conv1, pool1, conv2, pool2: SAME [28, 14, 10, 5], VALID [24, 12, 8, 4]."""
    s1 = IMAGE[0] if pad1 == "SAME" else IMAGE[0] - 4
    return [s1, s1 // 2, s1 // 2 - 4, (s1 // 2 - 4) // 2]


def flops(pad1: str = "SAME", batch: int = BATCH) -> int:
    """Matmul FLOPs (convolutions as matmuls) of one step: forward, weight grads (as much again)
    and input grads of every layer but the first: 2·fwd − fwd_conv1."""
    s = conv_sizes(pad1)
    conv1 = 2 * batch * s[0] ** 2 * CONVS[0][1] * CONVS[0][0] ** 2 * IMAGE[2]
    conv2 = 2 * batch * s[2] ** 2 * CONVS[1][1] * CONVS[1][0] ** 2 * CONVS[0][1]
    dims = (s[3] ** 2 * CONVS[1][1],) + DENSE
    dense = sum(2 * batch * a * b for a, b in zip(dims, dims[1:]))
    forward = conv1 + conv2 + dense
    return 2 * forward + forward - conv1


def n_params(pad1: str = "SAME") -> int:
    c1 = CONVS[0][0] ** 2 * IMAGE[2] * CONVS[0][1] + CONVS[0][1]
    c2 = CONVS[1][0] ** 2 * CONVS[0][1] * CONVS[1][1] + CONVS[1][1]
    dims = (conv_sizes(pad1)[3] ** 2 * CONVS[1][1],) + DENSE
    return c1 + c2 + sum(a * b + b for a, b in zip(dims, dims[1:]))


def min_bytes(pad1: str, optimizer: str) -> int:
    """Params (and Adam's m, v) read and written once, plus the batch: 4·(2·P·k + B·784 + B)."""
    k = 3 if optimizer == "adam" else 1
    return 4 * (2 * n_params(pad1) * k + BATCH * int(np.prod(IMAGE)) + BATCH)


def data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random batch: x (B, 28, 28, 1) NHWC float32, y (B,) int32 in [0, 10)."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((BATCH, *IMAGE), dtype=np.float32),
            rng.integers(0, DENSE[-1], BATCH).astype(np.int32))


def jdl_model():
    """``jdl.models.lenet5(impl='auto')`` for IMAGE inputs and DENSE[-1] classes: the fast
    kernels of ``jdl.kernels`` where their rule picks them (on CPU, conv1's shifted sum)."""
    import jdl

    return jdl.models.lenet5(n_classes=DENSE[-1], input_shape=IMAGE, impl="auto")


def flax_model(act: str, pool: str, pad1: str, dtype: str = "float32"):
    """The same LeNet-5 in flax.linen (NHWC, HWIO kernels), computing in ``dtype`` with float32
    params."""
    import flax.linen as nn
    import jax.numpy as jnp

    kw = {"dtype": jnp.dtype(dtype), "param_dtype": jnp.float32}

    fn = {"relu": nn.relu, "tanh": nn.tanh, "sigmoid": nn.sigmoid}[act]
    pooling = nn.max_pool if pool == "max" else nn.avg_pool

    class LeNet5(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = pooling(fn(nn.Conv(CONVS[0][1], (5, 5), padding=pad1, **kw)(x)), (2, 2), (2, 2))
            x = pooling(fn(nn.Conv(CONVS[1][1], (5, 5), padding="VALID", **kw)(x)), (2, 2), (2, 2))
            x = x.reshape(x.shape[0], -1)
            for i, d in enumerate(DENSE):
                x = nn.Dense(d, **kw)(x)
                x = fn(x) if i < len(DENSE) - 1 else x
            return x

    return LeNet5()


def flax_params(layers: list[dict]) -> dict:
    import jax.numpy as jnp

    names = ["Conv_0", "Conv_1", "Dense_0", "Dense_1", "Dense_2"]
    return {n: {"kernel": jnp.asarray(l["w"]), "bias": jnp.asarray(l["b"])} for n, l in zip(names, layers)}


def configure(quick: bool, seed: int, workdir: str) -> dict:
    """Build jdl's LeNet-5, check its weight shapes, find the variant (padding, activation,
    pooling) whose flax twin gives jdl's outputs, and save the shared weights."""
    import jax

    model = jdl_model()
    x, _ = data(seed)
    params, state = model.init(jax.random.key(seed), x)
    layers = [{k: np.asarray(v) for k, v in l.items()} for _, l in common.ordered_layers(params)]
    shapes = [tuple(l["w"].shape) for l in layers]
    pad1 = "SAME" if len(layers) == 5 and shapes[2][0] == 400 else "VALID"
    want = [(5, 5, 1, 6), (5, 5, 6, 16), (conv_sizes(pad1)[3] ** 2 * 16, 120), (120, 84), (84, 10)]
    if shapes != want or any("b" not in l for l in layers):
        raise common.Skip(f"jdl.models.lenet5 has weights {shapes}; the benchmark's LeNet-5 has {want} "
                          f"with biases")
    y_jdl, _ = model.apply(params, state, x)
    for act, pool in itertools.product(("relu", "tanh", "sigmoid"), ("max", "avg")):
        y_ref = flax_model(act, pool, pad1).apply({"params": flax_params(layers)}, x)
        if np.allclose(np.asarray(y_jdl), np.asarray(y_ref), rtol=1e-4, atol=1e-5):
            break
    else:
        raise common.Skip("jdl.models.lenet5 matches no (activation, pooling) variant of the reference")
    optimizer = common.OPTIMIZER
    weights = common.save_layers(os.path.join(workdir, f"{NAME}_weights.npz"), layers)
    return {
        "spec": {"name": NAME, "description": f"LeNet-5 28x28 ({pad1} conv1, {act}, {pool} pool), "
                                               f"batch {BATCH}, float32, {optimizer} lr {common.LEARNING_RATE}",
                 "flops": flops(pad1), "min_bytes": min_bytes(pad1, optimizer), "params": n_params(pad1)},
        "options": {"weights": weights, "optimizer": optimizer, "seed": seed, "act": act, "pool": pool,
                    "pad1": pad1},
    }


def torch_model(layers: list[dict], act: str, pool: str, pad1: str):
    """The same LeNet-5 in PyTorch (NCHW, OIHW kernels); the first Dense's rows are permuted
    from jdl's (H, W, C) flattening order to PyTorch's (C, H, W)."""
    import torch

    fn = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid}[act]
    pooling = torch.nn.MaxPool2d if pool == "max" else torch.nn.AvgPool2d
    c1 = torch.nn.Conv2d(1, 6, 5, padding=2 if pad1 == "SAME" else 0)
    c2 = torch.nn.Conv2d(6, 16, 5)
    s = conv_sizes(pad1)[3]
    fcs = [torch.nn.Linear(a, b) for a, b in zip((s * s * 16,) + DENSE, DENSE)]
    with torch.no_grad():
        for conv, l in zip((c1, c2), layers[:2]):
            conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(l["w"].transpose(3, 2, 0, 1))))
            conv.bias.copy_(torch.from_numpy(np.array(l["b"])))
    first = dict(layers[2])
    first["w"] = first["w"].reshape(s, s, 16, -1).transpose(2, 0, 1, 3).reshape(s * s * 16, -1)  # (C·H·W, 120)
    for fc, l in zip(fcs, [first] + layers[3:]):
        common.torch_linear(fc, l)
    return torch.nn.Sequential(c1, fn(), pooling(2), c2, fn(), pooling(2), torch.nn.Flatten(),
                               fcs[0], fn(), fcs[1], fn(), fcs[2])


def build(impl: str, options: dict, device: str = "cpu"):
    """The Runner of one implementation: 'jdl', 'flax' or 'torch'."""
    layers = common.load_layers(options["weights"])
    x, y = data(options["seed"])
    variant = options["act"], options["pool"], options["pad1"]
    dtype = common.compute_dtype(options)
    if impl == "jdl":
        return common.jdl_runner(jdl_model(), layers, options["optimizer"], x, y, dtype)
    if impl == "flax":
        import jax.numpy as jnp

        return common.flax_runner(flax_model(*variant, dtype), flax_params(layers), options["optimizer"],
                                  (jnp.asarray(x), jnp.asarray(y)))
    if impl == "torch":
        return common.torch_runner(torch_model(layers, *variant), options["optimizer"],
                                   x.transpose(0, 3, 1, 2), y, device, dtype)
    raise ValueError(f"lenet5: unknown implementation {impl!r}; expected jdl, flax or torch")
