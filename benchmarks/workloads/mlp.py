"""MLP 784-512-512-10 (ReLU), batch 128, softmax cross-entropy, Adam lr 1e-3 (the MNIST MLP).

FLOPs per step count the matmuls (the MFU convention): forward 2·B·Σ d_l·d_{l+1}, the weight
gradients as much again, and the input gradients of every layer but the first.
"""

from __future__ import annotations

import os

import numpy as np

from benchmarks.workloads import common

NAME = "mlp"
DIMS = (784, 512, 512, 10)
BATCH = 128


def n_params(dims=DIMS) -> int:
    """Σ_l (d_l·d_{l+1} + d_{l+1}): weights and biases."""
    return sum(a * b + b for a, b in zip(dims, dims[1:]))


def flops(batch: int = BATCH, dims=DIMS) -> int:
    """Matmul FLOPs of one training step:
    forward 2B·Σ_l d_l d_{l+1} + weight grads 2B·Σ_l d_l d_{l+1} + input grads 2B·Σ_{l≥2} d_l d_{l+1}."""
    layer = [2 * batch * a * b for a, b in zip(dims, dims[1:])]
    return 2 * sum(layer) + sum(layer[1:])


def min_bytes(batch: int = BATCH, dims=DIMS, optimizer: str = "adam") -> int:
    """The fewest bytes a step must move: read and write params (and Adam's m and v) once,
    read the batch (x float32, y int32): 4·(2·P·k + B·d_0 + B), k = 3 for Adam, 1 for SGD."""
    k = 3 if optimizer == "adam" else 1
    return 4 * (2 * n_params(dims) * k + batch * dims[0] + batch)


def data(batch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random batch: x (B, 784) standard normal float32, y (B,) int32 in [0, 10)."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, DIMS[0]), dtype=np.float32),
            rng.integers(0, DIMS[-1], batch).astype(np.int32))


def jdl_model():
    import jdl

    return jdl.models.mlp(list(DIMS[1:]))


def configure(quick: bool, seed: int, workdir: str) -> dict:
    """Initialize jdl's MLP once (LeCun normal, zero biases) and save the weights for all."""
    import jax

    optimizer = common.OPTIMIZER
    model = jdl_model()
    x, _ = data(BATCH, seed)
    params, _ = model.init(jax.random.key(seed), x)
    layers = [{k: np.asarray(v) for k, v in layer.items()} for _, layer in common.ordered_layers(params)]
    weights = common.save_layers(os.path.join(workdir, f"{NAME}_weights.npz"), layers)
    return {
        "spec": {"name": NAME, "description": f"MLP {'-'.join(map(str, DIMS))}, batch {BATCH}, "
                                               f"float32, {optimizer} lr {common.LEARNING_RATE}",
                 "flops": flops(), "min_bytes": min_bytes(optimizer=optimizer), "params": n_params()},
        "options": {"weights": weights, "optimizer": optimizer, "seed": seed},
    }


def flax_model(dtype: str = "float32"):
    """The same MLP in flax.linen (Dense kernels (d_in, d_out)), computing in ``dtype`` with
    float32 params."""
    import flax.linen as nn
    import jax.numpy as jnp

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, h):
            for i, d in enumerate(DIMS[1:]):
                h = nn.Dense(d, dtype=jnp.dtype(dtype), param_dtype=jnp.float32)(h)
                if i < len(DIMS) - 2:
                    h = nn.relu(h)
            return h

    return MLP()


def build(impl: str, options: dict, device: str = "cpu"):
    """The Runner of one implementation: 'jdl', 'flax' or 'torch'."""
    layers = common.load_layers(options["weights"])
    x, y = data(BATCH, options["seed"])
    opt, dtype = options["optimizer"], common.compute_dtype(options)
    if impl == "jdl":
        return common.jdl_runner(jdl_model(), layers, opt, x, y, dtype)
    if impl == "flax":
        import jax.numpy as jnp

        params = {f"Dense_{i}": {"kernel": jnp.asarray(l["w"]), "bias": jnp.asarray(l["b"])}
                  for i, l in enumerate(layers)}
        return common.flax_runner(flax_model(dtype), params, opt, (jnp.asarray(x), jnp.asarray(y)))
    if impl == "torch":
        import torch

        mods = []
        for i, (a, b) in enumerate(zip(DIMS, DIMS[1:])):
            lin = torch.nn.Linear(a, b)
            common.torch_linear(lin, layers[i])
            mods += [lin] + ([torch.nn.ReLU()] if i < len(DIMS) - 2 else [])
        return common.torch_runner(torch.nn.Sequential(*mods), opt, x, y, device, dtype)
    raise ValueError(f"mlp: unknown implementation {impl!r}; expected jdl, flax or torch")
