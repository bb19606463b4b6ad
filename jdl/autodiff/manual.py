"""Backpropagation by hand: an MLP's forward and backward passes written out layer by layer.

The course writes one example as a column vector:

    z_m = W_m a_{m−1} + b_m,   a_m = φ(z_m),   a_0 = x
    dL/dz_m = (W_{m+1}ᵀ dL/dz_{m+1}) ⊙ φ'(z_m)          (the recursion)
    dL/dW_m = dL/dz_m · a_{m−1}ᵀ,   dL/db_m = dL/dz_m

jdl keeps a batch of row vectors and w = Wᵀ of shape (d_in, d_out) (as ``jdl.nn.Dense``), so
the same equations read, for Z_m (B, d_m):

    Z_m = A_{m−1} w_m + b_m,   dL/dZ_m = (dL/dZ_{m+1} w_{m+1}ᵀ) ⊙ φ'(Z_m),
    dL/dw_m = A_{m−1}ᵀ dL/dZ_m,   dL/db_m = Σ_batch dL/dZ_m.

``layers`` is a list of ``{'w', 'b'}`` dicts, first layer first; ``dense_layers`` takes them
out of the params of a ``jdl.models.mlp``, so the result can be compared with ``jax.grad``.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from jdl.losses import mse, sigmoid_binary_cross_entropy, softmax_cross_entropy
from jdl.nn.activations import relu, sigmoid, softmax, tanh

Layers = list[dict[str, jax.Array]]

# φ and φ' written with what the forward pass already has: φ'(z) from z and a = φ(z)
ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "sigmoid": (sigmoid, lambda z, a: a * (1 - a)),                 # σ' = σ(1 − σ)
    "tanh": (tanh, lambda z, a: 1 - a * a),                          # tanh' = 1 − tanh²
    "relu": (relu, lambda z, a: (z > 0).astype(z.dtype)),            # 1 if z > 0 else 0
}


def _activation(name: str) -> tuple[Callable, Callable]:
    if name not in ACTIVATIONS:
        raise ValueError(f"manual backprop: activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


def dense_layers(params: dict[str, Any]) -> Layers:
    """The Dense layers' ``{'w', 'b'}`` of a ``serial``/``mlp`` params dict, in order
    (keys ``'1_dense'``, ``'3_dense'``, … sorted by their index)."""
    keys = sorted((k for k in params if isinstance(params[k], dict) and "w" in params[k]),
                  key=lambda k: int(k.split("_", 1)[0]))
    return [params[k] for k in keys]


def forward(layers: Layers, x: jax.Array, activation: str = "relu") -> list[tuple[jax.Array, jax.Array]]:
    """The forward pass, keeping what backward needs: [(Z_m, A_m)] for m = 1..L, A_0 = x first
    as (x, x). Hidden layers use φ; the last layer is linear (A_L = Z_L, the logits).

    Shapes: x (B, d_0), w_m (d_{m−1}, d_m) → Z_m, A_m (B, d_m).
    """
    phi, _ = _activation(activation)
    cache = [(x, x)]
    a = x
    for m, layer in enumerate(layers):
        if a.shape[-1] != layer["w"].shape[0]:
            raise ValueError(f"manual.forward: layer {m} expects d_in={layer['w'].shape[0]}, got input {a.shape}")
        z = a @ layer["w"] + layer["b"][None, :]  # (B, d_m)
        a = z if m == len(layers) - 1 else phi(z)
        cache.append((z, a))
    return cache


def output_delta(z_out: jax.Array, y: jax.Array, loss: str) -> tuple[jax.Array, jax.Array]:
    """The loss and dL/dZ_L at the logits, by hand (L a mean over the batch B):

        'mse'             L = mean (Z − y)²              dL/dZ = 2(Z − y)/(B·K)
        'sigmoid_bce'     L = mean BCE(σ(Z), y)          dL/dZ = (σ(Z) − y)/(B·K)
        'softmax_ce'      L = mean −Σ_k y_k log softmax  dL/dZ = (softmax(Z) − y)/B   (y one-hot)
    """
    if loss == "mse":
        return mse(z_out, y), 2 * (z_out - y) / z_out.size
    if loss == "sigmoid_bce":
        return sigmoid_binary_cross_entropy(z_out, y), (sigmoid(z_out) - y) / z_out.size
    if loss == "softmax_ce":
        return softmax_cross_entropy(z_out, y), (softmax(z_out) - y) / z_out.shape[0]
    raise ValueError(f"manual.output_delta: loss must be 'mse', 'sigmoid_bce' or 'softmax_ce', got {loss!r}")


def backward(layers: Layers, cache: list[tuple[jax.Array, jax.Array]], delta: jax.Array,
             activation: str = "relu") -> Layers:
    """The backward pass: from δ_L = dL/dZ_L, for m = L..1

        dL/dw_m = A_{m−1}ᵀ δ_m,  dL/db_m = Σ_batch δ_m,  δ_{m−1} = (δ_m w_mᵀ) ⊙ φ'(Z_{m−1}).

    Returns the gradients as a list like ``layers``.
    """
    _, dphi = _activation(activation)
    grads: Layers = [{} for _ in layers]
    for m in range(len(layers) - 1, -1, -1):
        a_prev = cache[m][1]  # A_{m−1} (B, d_{m−1}); cache[0] holds x
        grads[m] = {"w": a_prev.T @ delta, "b": jnp.sum(delta, axis=0)}  # (d_{m−1}, d_m), (d_m,)
        if m > 0:
            z_prev, a_prev = cache[m]
            delta = (delta @ layers[m]["w"].T) * dphi(z_prev, a_prev)  # (B, d_{m−1})
    return grads


def loss_and_grads(layers: Layers, x: jax.Array, y: jax.Array, activation: str = "relu",
                   loss: str = "softmax_ce") -> tuple[jax.Array, Layers]:
    """Forward, the loss and its gradient at the logits, then backward: (L, [dL/dw_m, dL/db_m]).

    Equal to ``jax.value_and_grad`` of the same network and loss (float64: relative error
    ~1e-15). Shapes: x (B, d_0); y (B, d_L) (one-hot for 'softmax_ce').
    """
    cache = forward(layers, x, activation)
    value, delta = output_delta(cache[-1][0], y, loss)
    return value, backward(layers, cache, delta, activation)
