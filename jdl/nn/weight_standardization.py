"""Weight standardization (Qiao et al., 2019), one of the course's normalization techniques
beside BatchNorm: normalize each filter's weights, not the activations.

For output channel o with fan-in weights W_{·,o} (the I = k_h·k_w·C_in/groups values that feed
it, HWIO layout), the layer convolves with

    μ_o = 1/I Σ_i W_{i,o},   σ_o = √(1/I Σ_i (W_{i,o} − μ_o)² + ε),   Ŵ_{i,o} = (W_{i,o} − μ_o) / σ_o,

(the paper's equation 5; ε inside the root). The stored ``w`` stays unconstrained; gradients
flow through μ and σ to it. The paper pairs it with GroupNorm for micro-batch training.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jdl.core import Module, Params, State, leaf


def standardize_weight(w: jax.Array, eps: float = 1e-5) -> jax.Array:
    """Ŵ = (W − μ_o)/√(σ²_o + ε), μ_o and σ²_o (biased, 1/I) over every axis but the last.

    Shapes: w (..., d_out): HWIO (k_h, k_w, C_in, C_out), WIO, or a Dense (d_in, d_out) → the
    same shape; each Ŵ[..., o] has mean 0 and variance I·σ²_o/(I·σ²_o + I·ε) ≈ 1.

    >>> w = jnp.array([[1.0, 0.0], [3.0, 0.0]])  # (d_in=2, d_out=2)
    >>> standardize_weight(w, eps=0.0)[:, 0].tolist()
    [-1.0, 1.0]
    """
    if w.ndim < 2:
        raise ValueError(f"standardize_weight: expected a weight (..., d_out) of rank >= 2, got shape {tuple(w.shape)}")
    axes = tuple(range(w.ndim - 1))  # fan-in axes: every axis but the output channels
    wf = w.astype(jnp.promote_types(w.dtype, jnp.float32))
    mean = jnp.mean(wf, axis=axes, keepdims=True)  # (1, …, 1, d_out)
    var = jnp.mean(jnp.square(wf - mean), axis=axes, keepdims=True)  # (1, …, 1, d_out)
    return ((wf - mean) * jax.lax.rsqrt(var + eps)).astype(w.dtype)


def WeightStandardized(layer: Module, eps: float = 1e-5) -> Module:
    """``layer`` (a ``Conv2D``, ``Conv1D`` or ``Dense``: any leaf with a weight ``w`` of shape
    (..., d_out)) applied with Ŵ = ``standardize_weight(w, eps)`` in place of w:

        y = layer.apply({w: Ŵ, b: b}, x)

    Params and state are the layer's own (same keys), so a checkpoint of the plain layer loads.

    Shapes: as ``layer``.

    >>> import jdl
    >>> conv = WeightStandardized(jdl.nn.Conv2D(8, 3))
    """
    if not isinstance(layer, Module):
        raise TypeError(f"WeightStandardized: expected a jdl Module such as Conv2D(16, 3), got {layer!r}")

    def init(key: jax.Array, x: Any) -> tuple[Params, State]:
        params, state = layer.init(key, x)
        if "w" not in params or jnp.ndim(params["w"]) < 2:
            raise ValueError(f"WeightStandardized: the layer {layer.name!r} has no weight 'w' of rank >= 2 "
                             f"(params {sorted(params)}); wrap a Conv2D, Conv1D or Dense")
        return params, state

    def apply(params: Params, state: State, x: Any, *, key=None, train=False):
        standardized = {**params, "w": standardize_weight(params["w"], eps)}
        return layer.apply(standardized, state, x, key=key, train=train)

    return leaf(init, apply, f"ws_{layer.name}")
