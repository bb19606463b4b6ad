"""The activation functions of the course, as pure array functions, and ``PReLU`` as a module.

Each docstring gives φ(z) and its derivative φ'(z), the factor backpropagation multiplies by.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jdl.core import Module, Params, PRNGKey, State, check_features, leaf, shape_struct


def step(z: jax.Array, value_at_zero: float = 1.0) -> jax.Array:
    """Heaviside step (the McCulloch–Pitts / perceptron threshold):

        φ(z) = 1 if z > 0,   0 if z < 0,   ``value_at_zero`` if z = 0       (``np.heaviside(z, h0)``)

    The default 1 at z = 0 is the McCulloch–Pitts unit's ``Σ w_i x_i ≥ θ``. The course's
    perceptron outputs 0 there (ŷ = 1 if wᵀx > 0, 0 if wᵀx ≤ 0), which is ``value_at_zero=0``,
    as ``jdl.models.classic.perceptron_predict`` uses. φ'(z) = 0 almost everywhere, which is why
    it cannot be trained by gradient descent.

    Shapes: z (...) → φ(z) (...), z's float dtype (at least float32).
    """
    dtype = jnp.result_type(z, jnp.float32)
    return jnp.where(z > 0, 1.0, jnp.where(z == 0, value_at_zero, 0.0)).astype(dtype)  # NaN → 0


def sigmoid(z: jax.Array) -> jax.Array:
    """Logistic sigmoid: σ(z) = 1 / (1 + e^{−z}); σ'(z) = σ(z)(1 − σ(z)) ≤ 1/4."""
    return jax.nn.sigmoid(z)


def tanh(z: jax.Array) -> jax.Array:
    """Hyperbolic tangent: tanh(z) = (e^z − e^{−z}) / (e^z + e^{−z}); tanh'(z) = 1 − tanh²(z)."""
    return jnp.tanh(z)


def relu(z: jax.Array) -> jax.Array:
    """Rectified linear unit: φ(z) = max(0, z); φ'(z) = 1 if z > 0 else 0 (a unit stuck at
    z < 0 for every input gets no gradient: the dying ReLU).

    At the kink the course's convention is φ'(0) = 0 ("1 if x > 0, 0 if x ≤ 0"), as in PyTorch;
    it is written as where(z > 0, z, 0) because ``jnp.maximum`` would split the tie, φ'(0) = 1/2.
    """
    return jnp.where(z > 0, z, jnp.zeros_like(z))


def leaky_relu(z: jax.Array, negative_slope: float = 0.01) -> jax.Array:
    """Leaky ReLU: φ(z) = z if z ≥ 0 else a·z, with a small a (0.01); φ'(z) = 1 or a."""
    return jnp.where(z >= 0, z, negative_slope * z)


def elu(z: jax.Array, alpha: float = 1.0) -> jax.Array:
    """Exponential linear unit: φ(z) = z if z > 0 else α(e^z − 1); φ'(z) = 1 or α·e^z."""
    return jnp.where(z > 0, z, alpha * jnp.expm1(jnp.minimum(z, 0)))


def gelu(z: jax.Array, approximate: bool = False) -> jax.Array:
    """Gaussian error linear unit: φ(z) = z·Φ(z), Φ the standard normal CDF,
    = z/2·(1 + erf(z/√2)); ``approximate=True`` uses z/2·(1 + tanh(√(2/π)(z + 0.044715 z³)))."""
    return jax.nn.gelu(z, approximate=approximate)


def softmax(z: jax.Array, axis: int = -1) -> jax.Array:
    """softmax(z)_i = e^{z_i} / Σ_j e^{z_j}, computed as e^{z_i − max z} / Σ_j e^{z_j − max z}
    so that no exponential overflows. Its Jacobian is diag(s) − s sᵀ."""
    z_max = jax.lax.stop_gradient(jnp.max(z, axis=axis, keepdims=True))
    e = jnp.exp(z - z_max)
    return e / jnp.sum(e, axis=axis, keepdims=True)


def log_softmax(z: jax.Array, axis: int = -1) -> jax.Array:
    """log softmax(z)_i = z_i − log Σ_j e^{z_j} = (z_i − m) − log Σ_j e^{z_j − m}, m = max z
    (the log-sum-exp trick: stable for logits of any magnitude)."""
    shifted = z - jax.lax.stop_gradient(jnp.max(z, axis=axis, keepdims=True))
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=axis, keepdims=True))


def prelu(z: jax.Array, alpha: jax.Array) -> jax.Array:
    """Parametric ReLU: φ(z) = z if z ≥ 0 else α·z, with α learned; ∂φ/∂α = min(z, 0)."""
    return jnp.where(z >= 0, z, alpha * z)


def PReLU(alpha_init: float = 0.25, per_channel: bool = False) -> Module:
    """Parametric ReLU with a trainable slope α: y = x if x ≥ 0 else α·x.

    Params: ``alpha``, a scalar shape () by default (PyTorch's ``num_parameters=1``), or one
    slope per channel of the last axis, shape (C,), with ``per_channel=True``.
    Shapes: x (..., C) → y (..., C).
    """

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        del key
        x = shape_struct(x)
        shape = (x.shape[-1],) if per_channel else ()
        return {"alpha": jnp.full(shape, alpha_init, x.dtype)}, {}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False):
        del key, train
        if params["alpha"].ndim == 1:
            check_features("PReLU", x, params["alpha"].shape[0], what="C")
        return prelu(x, params["alpha"]), state

    return leaf(init, apply, "prelu")
