"""The pieces every normalization layer of ``jdl.nn.norm`` shares: the statistics μ, σ² over
axes A (``moments``), the normalization y = γ·(x − μ)/√(σ² + ε) + β (``normalize``), γ and β at
init, and the checks of rank, ε and momentum."""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp

from jdl.core import Initializer, Params, PRNGKey


def _stat_dtype(dtype: Any) -> Any:
    return jnp.promote_types(dtype, jnp.float32)


def _check_rank(layer: str, x: Any, layouts: dict[int, str] | int) -> None:
    """layouts: each accepted rank with its layout, or the least rank (then any rank from it)."""
    if isinstance(layouts, int):
        if x.ndim < layouts:
            raise ValueError(f"{layer}: expected an input (B, ..., D) of rank ≥ {layouts}, got shape "
                             f"{tuple(x.shape)} of rank {x.ndim}")
        return
    if x.ndim not in layouts:
        expected = " or ".join(f"({v})" for v in layouts.values())
        raise ValueError(f"{layer}: expected an input laid out as {expected}, got shape "
                         f"{tuple(x.shape)} of rank {x.ndim}")


def normalize(x: jax.Array, mean: jax.Array, var: jax.Array, gamma: jax.Array | None,
              beta: jax.Array | None, eps: float, eps_in_sqrt: bool = True) -> jax.Array:
    """y = γ·(x − μ)/√(σ² + ε) + β (γ, β skipped when None); y = γ·(x − μ)/(σ + ε) + β with
    ``eps_in_sqrt=False``.

    Shapes: x (...); mean, var broadcastable to x with x's rank; gamma, beta (C,) for the last
    axis. Returns y of x's shape, in float32 or wider (the caller casts back).
    """
    y = (x - mean) * jax.lax.rsqrt(var + eps) if eps_in_sqrt else (x - mean) / (jnp.sqrt(var) + eps)
    lead = (1,) * (x.ndim - 1)
    if gamma is not None:
        y = y * gamma.reshape(*lead, -1)
    if beta is not None:
        y = y + beta.reshape(*lead, -1)
    return y


def moments(x: jax.Array, axes: Sequence[int], axis_name: str | None = None) -> tuple[jax.Array, jax.Array]:
    """μ = mean_A(x) and the biased σ² = mean_A((x − μ)²), keeping the reduced axes (size 1).

    With ``axis_name`` (under ``vmap``/``shard_map``/``pmap``) both are averaged over that named
    axis too: μ = pmean(μ_local), σ² = pmean(mean_A((x − μ)²)), which equals the statistics of
    the whole batch when every shard has the same size.
    """
    mean = jnp.mean(x, axis=tuple(axes), keepdims=True)
    if axis_name is not None:
        mean = jax.lax.pmean(mean, axis_name)
    var = jnp.mean(jnp.square(x - mean), axis=tuple(axes), keepdims=True)
    if axis_name is not None:
        var = jax.lax.pmean(var, axis_name)
    return mean, var


def _affine_params(key: PRNGKey, x: Any, gamma_init: Initializer, use_beta: bool = True) -> Params:
    c = x.shape[-1]
    dtype = _stat_dtype(x.dtype)
    params = {"gamma": gamma_init(key, (c,), dtype)}
    if use_beta:
        params["beta"] = jnp.zeros((c,), dtype)
    return params


def _check_eps_momentum(layer: str, eps: float, momentum: float | None = None) -> None:
    if not eps > 0:
        raise ValueError(f"{layer}: eps must be > 0, got {eps!r}")
    if momentum is not None and not 0.0 <= momentum < 1.0:
        raise ValueError(f"{layer}: momentum must be in [0, 1) (flax's convention: running = "
                         f"momentum·running + (1 − momentum)·batch, e.g. 0.99), got {momentum!r}")
