"""BatchNorm's backward pass by hand, as the course derives it: the batch mean and variance are
functions of every input, so ∂l/∂x_i has three paths (direct, through μ, through σ²).

Forward, per feature j over the N values of the batch (and of H, W for images):

    μ = 1/N Σ_i x_i,   σ² = 1/N Σ_i (x_i − μ)²,   x̂_i = (x_i − μ)/√(σ² + ε),   y_i = γ·x̂_i + β

Backward, from g_i = ∂l/∂y_i (Ioffe & Szegedy 2015, section 3):

    ∂l/∂β  = Σ_i g_i                       ∂l/∂γ = Σ_i g_i·x̂_i
    ∂l/∂x̂_i = g_i·γ
    ∂l/∂σ² = Σ_i ∂l/∂x̂_i·(x_i − μ)·(−½)(σ² + ε)^{−3/2}
    ∂l/∂μ  = Σ_i ∂l/∂x̂_i·(−1/√(σ² + ε)) + ∂l/∂σ²·(−2/N)Σ_i (x_i − μ)      (the last sum is 0)
    ∂l/∂x_i = ∂l/∂x̂_i/√(σ² + ε) + ∂l/∂μ·1/N + ∂l/∂σ²·2(x_i − μ)/N

The tests check every line against ``jax.grad`` of ``jdl.nn.BatchNorm`` in training mode.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp


def _check(x: jax.Array, gamma: jax.Array) -> None:
    if x.ndim < 2 or gamma.shape != x.shape[-1:]:
        raise ValueError(f"batchnorm_forward: expected x (N, ..., C) and gamma (C,), got x {tuple(x.shape)} "
                         f"and gamma {tuple(gamma.shape)}")


def batchnorm_forward(x: jax.Array, gamma: jax.Array, beta: jax.Array,
                      eps: float = 1e-5) -> tuple[jax.Array, dict[str, jax.Array]]:
    """y = γ·(x − μ)/√(σ² + ε) + β with the batch's μ, σ² per channel (the last axis).

    Shapes: x (N, C) or (N, H, W, C); gamma, beta (C,) → y like x, and the cache
    {'x', 'x_hat', 'mu', 'var', 'gamma', 'eps'} that ``batchnorm_backward`` needs (μ, σ², γ kept
    as (1, …, 1, C) so they broadcast against x).
    """
    _check(x, gamma)
    axes = tuple(range(x.ndim - 1))
    gamma, beta = (v.reshape((1,) * len(axes) + (-1,)) for v in (gamma, beta))  # (1, …, 1, C)
    mu = jnp.mean(x, axis=axes, keepdims=True)  # (1, …, 1, C)
    var = jnp.mean(jnp.square(x - mu), axis=axes, keepdims=True)  # the biased 1/N variance
    x_hat = (x - mu) / jnp.sqrt(var + eps)
    return gamma * x_hat + beta, {"x": x, "x_hat": x_hat, "mu": mu, "var": var, "gamma": gamma,
                                  "eps": jnp.asarray(eps, x.dtype)}


def batchnorm_backward(dy: jax.Array, cache: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """∂l/∂x, ∂l/∂γ, ∂l/∂β from ∂l/∂y, with the intermediate ∂l/∂x̂, ∂l/∂σ², ∂l/∂μ (module docstring).

    Shapes: dy like x → {'x', 'x_hat': like x; 'gamma', 'beta', 'mu', 'var': (C,)}.
    """
    x, x_hat, mu, var, gamma, eps = (cache[k] for k in ("x", "x_hat", "mu", "var", "gamma", "eps"))
    axes = tuple(range(x.ndim - 1))
    total = partial(jnp.sum, axis=axes, keepdims=True)  # Σ_i, to (1, …, 1, C)
    n = x.size // x.shape[-1]  # values per channel
    d_beta = total(dy)
    d_gamma = total(dy * x_hat)
    d_x_hat = dy * gamma
    d_var = total(d_x_hat * (x - mu)) * -0.5 * (var + eps) ** -1.5
    d_mu = total(d_x_hat) * -1 / jnp.sqrt(var + eps) + d_var * -2 / n * total(x - mu)
    d_x = d_x_hat / jnp.sqrt(var + eps) + d_mu / n + d_var * 2 * (x - mu) / n
    per_channel = lambda v: v.reshape(-1)  # (C,)
    return {"x": d_x, "x_hat": d_x_hat, "gamma": per_channel(d_gamma), "beta": per_channel(d_beta),
            "var": per_channel(d_var), "mu": per_channel(d_mu)}
