"""Initializers, each ``(key, shape, dtype=float32) -> array``.

Why not zeros: if every weight of a layer starts equal, every hidden unit computes the same
function and receives the same gradient, so they stay identical forever (the symmetry problem).
Small random weights break the symmetry; Xavier/Glorot and He scale them so that activations and
gradients keep their variance from layer to layer.

Fans: a dense kernel ``(d_in, d_out)`` has fan_in = d_in, fan_out = d_out. A convolution kernel
``(*window, c_in, c_out)`` (HWIO) has fan_in = prod(window)·c_in and fan_out = prod(window)·c_out.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from jdl.core import Initializer, PRNGKey, Shape


def fans(shape: Shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a kernel: ``(d_in, d_out)`` or HWIO ``(*window, c_in, c_out)``.

    >>> fans((3, 3, 16, 32))
    (144, 288)
    """
    if len(shape) < 1:
        raise ValueError(f"fans: a kernel needs at least one dimension, got shape {shape}")
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


# Sizes of the flat draws that ``draw`` slices from: three programs cover every kernel up to 2^20
# elements; a larger one is drawn at its own shape (its draw, not its compile, dominates).
DRAW_SIZES = (4096, 65536, 2 ** 20)


def draw(sampler: Any, key: PRNGKey, shape: Shape, dtype: Any, *bounds: float) -> jax.Array:
    """``sampler(key, shape, dtype, *bounds)`` (``jax.random.normal`` or ``uniform``: bounds
    after dtype; ``truncated_normal``: bounds first), the same array bit for bit, drawn as the
    first prod(shape) elements of a flat draw of the next size in ``DRAW_SIZES``.

    Why: called eagerly, each distinct shape of a jax.random draw is its own XLA program, and
    compiling one (threefry plus the inverse error function) costs ~0.25 s of CPU, longer than
    drawing a million numbers: a ResNet-20 compiled nine of them before its first step. With
    JAX's partitionable threefry (``jax_threefry_partitionable``, the default) element i of a draw
    depends only on the key and i in row-major order, so draw(size)[:n].reshape(shape) equals
    the draw at ``shape``. Inside a trace (a jitted init) or without that flag the draw is made
    at ``shape`` directly.

    Shapes: any ``shape``; returns ``shape`` in ``dtype``.
    """
    n = math.prod(shape)
    size = next((s for s in DRAW_SIZES if s >= n), None)
    args = (bounds[0], bounds[1], shape, dtype) if sampler is jax.random.truncated_normal else (shape, dtype, *bounds)
    if (size is None or n == 0 or isinstance(key, jax.core.Tracer)
            or not jax.config.jax_threefry_partitionable):
        return sampler(key, *args)
    flat = (bounds[0], bounds[1], (size,), dtype) if sampler is jax.random.truncated_normal else ((size,), dtype, *bounds)
    return sampler(key, *flat)[:n].reshape(shape)


def zeros(key: PRNGKey, shape: Shape, dtype: Any = jnp.float32) -> jax.Array:
    """w = 0. Right for biases; for weights it causes the symmetry problem."""
    del key
    return jnp.zeros(shape, dtype)


def ones(key: PRNGKey, shape: Shape, dtype: Any = jnp.float32) -> jax.Array:
    """w = 1 (norm scales)."""
    del key
    return jnp.ones(shape, dtype)


def constant(value: float) -> Initializer:
    """w = value everywhere."""

    def init(key: PRNGKey, shape: Shape, dtype: Any = jnp.float32) -> jax.Array:
        del key
        return jnp.full(shape, value, dtype)

    return init


def uniform(scale: float = 0.05) -> Initializer:
    """w ~ U(−scale, scale): the course's "small uniform" initialization."""

    def init(key: PRNGKey, shape: Shape, dtype: Any = jnp.float32) -> jax.Array:
        return draw(jax.random.uniform, key, shape, dtype, -scale, scale)

    return init


def normal(stddev: float = 0.01) -> Initializer:
    """w ~ N(0, stddev²): the course's "small normal" initialization."""

    def init(key: PRNGKey, shape: Shape, dtype: Any = jnp.float32) -> jax.Array:
        return stddev * draw(jax.random.normal, key, shape, dtype)

    return init


def variance_scaling(scale: float, mode: str, distribution: str) -> Initializer:
    """Var(w) = scale / n, with n = fan_in, fan_out or (fan_in + fan_out)/2.

    ``distribution`` is 'normal' (w = σ·z, σ = √(scale/n)), 'truncated_normal' (z truncated to
    [−2, 2] and rescaled so the variance is still scale/n), or 'uniform' (w ~ U(−a, a),
    a = √(3·scale/n)).
    """
    if mode not in ("fan_in", "fan_out", "fan_avg"):
        raise ValueError(f"variance_scaling: mode must be fan_in, fan_out or fan_avg, got {mode!r}")
    if distribution not in ("normal", "truncated_normal", "uniform"):
        raise ValueError("variance_scaling: distribution must be normal, truncated_normal or "
                         f"uniform, got {distribution!r}")

    def init(key: PRNGKey, shape: Shape, dtype: Any = jnp.float32) -> jax.Array:
        fan_in, fan_out = fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        variance = scale / max(1.0, n)
        if distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return draw(jax.random.uniform, key, shape, dtype, -limit, limit)
        if distribution == "normal":
            return math.sqrt(variance) * draw(jax.random.normal, key, shape, dtype)
        # std of N(0,1) truncated to [-2, 2] is 0.87962566103423978
        stddev = math.sqrt(variance) / 0.87962566103423978
        return stddev * draw(jax.random.truncated_normal, key, shape, dtype, -2.0, 2.0)

    return init


def xavier_uniform(key: PRNGKey, shape: Shape, dtype: Any = jnp.float32) -> jax.Array:
    """Glorot uniform: w ~ U(−a, a), a = √(6/(fan_in + fan_out)), so Var(w) = 2/(fan_in + fan_out)."""
    return variance_scaling(1.0, "fan_avg", "uniform")(key, shape, dtype)


def xavier_normal(key: PRNGKey, shape: Shape, dtype: Any = jnp.float32) -> jax.Array:
    """Glorot normal: w ~ N(0, σ²), σ = √(2/(fan_in + fan_out)) (the course's notes)."""
    return variance_scaling(1.0, "fan_avg", "normal")(key, shape, dtype)


def he_uniform(key: PRNGKey, shape: Shape, dtype: Any = jnp.float32) -> jax.Array:
    """He (Kaiming) uniform for ReLU: w ~ U(−a, a), a = √(6/fan_in), so Var(w) = 2/fan_in."""
    return variance_scaling(2.0, "fan_in", "uniform")(key, shape, dtype)


def he_normal(key: PRNGKey, shape: Shape, dtype: Any = jnp.float32) -> jax.Array:
    """He (Kaiming) normal for ReLU: w ~ N(0, 2/fan_in), i.e. W·√(2/m_{l−1}) (the course)."""
    return variance_scaling(2.0, "fan_in", "normal")(key, shape, dtype)


def lecun_normal(key: PRNGKey, shape: Shape, dtype: Any = jnp.float32) -> jax.Array:
    """LeCun normal: Var(w) = 1/fan_in, truncated normal (flax's default kernel init);
    the course's "scale by √(1/m_{l−1})"."""
    return variance_scaling(1.0, "fan_in", "truncated_normal")(key, shape, dtype)


def orthogonal(scale: float = 1.0) -> Initializer:
    """w = scale·Q with Q orthogonal (Saxe et al., 2014): QᵀQ = I when rows ≥ columns, QQᵀ = I
    otherwise. Q comes from the QR decomposition of a standard normal matrix A = QR, with each
    column of Q multiplied by the sign of R's diagonal so that Q is uniformly (Haar) distributed.

    Repeated multiplication by an orthogonal W_hh keeps a vector's norm, neither shrinking nor
    growing it, which is why recurrent weights start orthogonal (the course's vanishing and
    exploding gradients through W_hh). A kernel of rank > 2 is flattened to
    (prod(shape[:-1]), shape[-1]) first, as flax and PyTorch do.
    """

    def init(key: PRNGKey, shape: Shape, dtype: Any = jnp.float32) -> jax.Array:
        if len(shape) < 2:
            raise ValueError(f"orthogonal: needs a kernel of at least 2 dimensions, got shape {shape}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = jax.random.normal(key, (max(rows, cols), min(rows, cols)), jnp.float32)
        q, r = jnp.linalg.qr(a)                                       # q (max, min)
        q = q * jnp.sign(jnp.diagonal(r))[None, :]
        q = q if rows >= cols else q.T                                # (rows, cols)
        return (scale * q).reshape(shape).astype(dtype)

    return init
