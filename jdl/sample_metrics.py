"""How close generated samples are to data: the maximum mean discrepancy (MMD) between two
sets of points under a sum of Gaussian kernels (Gretton et al. 2012)."""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp


def _sq_dists(a: jax.Array, b: jax.Array) -> jax.Array:
    """‖a_i − b_j‖² for every pair. Shapes: a (n, D), b (m, D) → (n, m)."""
    return jnp.maximum(jnp.sum(a * a, 1)[:, None] + jnp.sum(b * b, 1)[None, :] - 2 * a @ b.T, 0.0)


def median_bandwidth(x: Any) -> jax.Array:
    """The median heuristic: σ = median over pairs i < j of ‖x_i − x_j‖.

    Shapes: x (n, ...) → a scalar.
    """
    x = jnp.asarray(x).reshape(len(x), -1)  # (n, D)
    d2 = _sq_dists(x, x)
    i, j = jnp.triu_indices(len(x), k=1)
    return jnp.sqrt(jnp.median(d2[i, j]))


def mmd2(x: Any, y: Any, bandwidths: Sequence[float]) -> jax.Array:
    """The biased (V-statistic) estimate of the squared MMD with kernel
    k(a, b) = Σ_σ exp(−‖a − b‖²/(2σ²)):

        MMD²_b = (1/n²) Σ_ij k(x_i, x_j) + (1/m²) Σ_ij k(y_i, y_j) − (2/nm) Σ_ij k(x_i, y_j)

    It is ≥ 0 and, for two independent draws of one distribution, of order 1/n rather than 0, so
    the MMD of model samples to data can be read against the MMD of two data draws of the same
    sizes (the yardstick of the diffusion experiments).

    Shapes: x (n, ...), y (m, ...) with the same trailing shape → a scalar.

    Args:
      x, y: the two samples (flattened to (n, D) and (m, D)).
      bandwidths: the kernel widths σ summed over (e.g. multiples of ``median_bandwidth``).
    """
    x = jnp.asarray(x).reshape(len(x), -1)
    y = jnp.asarray(y).reshape(len(y), -1)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"mmd2: x and y must have the same point size D, got x {x.shape} and y {y.shape}")
    if len(bandwidths) == 0:
        raise ValueError("mmd2: give at least one kernel bandwidth")

    def k(a, b):
        d2 = _sq_dists(a, b)
        return sum(jnp.exp(-d2 / (2.0 * s ** 2)) for s in bandwidths)

    return jnp.mean(k(x, x)) + jnp.mean(k(y, y)) - 2 * jnp.mean(k(x, y))
