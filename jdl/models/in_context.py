"""The baselines of in-context linear regression (Garg et al., 2022): estimators that see the
same prompt (x_1, y_1, …, x_{i−1}, y_{i−1}, x_i) as the Transformer and predict y_i.

    least squares   ŵ = X⁺y, the min-norm solution (X⁺ the pseudo-inverse; the least-squares
                    fit when i − 1 ≥ d, the smallest-norm interpolant when i − 1 < d)
    averaging       ŵ = (1/(i−1)) Σ_j y_j x_j   (an unbiased estimate of w when x ~ N(0, I))
    k-NN            ŷ_i = the mean of y_j over the k (here 3) x_j nearest to x_i

With no example yet (i = 1) each predicts 0, the mean of y. Each returns the predictions at all
n positions at once, position i using the examples before it only, so the error at position i
is the error with i − 1 in-context examples.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _check(name: str, xs: jax.Array, ys: jax.Array) -> None:
    if xs.ndim != 3 or ys.shape != xs.shape[:2]:
        raise ValueError(f"{name}: expected xs (B, n, d) and ys (B, n), got {tuple(xs.shape)} "
                         f"and {tuple(ys.shape)}")


def _before(n: int) -> jax.Array:
    """M_ij = [j < i]: which examples position i may use. (n, n) float."""
    return (jnp.arange(n)[None, :] < jnp.arange(n)[:, None]).astype(jnp.float32)


def least_squares_predictions(xs: jax.Array, ys: jax.Array) -> jax.Array:
    """ŷ_i = x_iᵀ X_{<i}⁺ y_{<i}, with X_{<i} the first i − 1 inputs (the later rows zeroed,
    which leaves the min-norm solution unchanged) and ⁺ the Moore–Penrose pseudo-inverse.

    Shapes: xs (B, n, d), ys (B, n) → ŷ (B, n).
    """
    _check("least_squares_predictions", xs, ys)
    M = _before(xs.shape[1])  # (n, n)

    def one(x, y):  # x (n, d), y (n,)
        X = M[:, :, None] * x[None]  # (n, n, d): row i holds X_{<i}
        w = jnp.einsum("idn,in->id", jnp.linalg.pinv(X), M * y[None])  # (n, d): ŵ_i = X_{<i}⁺ y_{<i}
        return jnp.sum(w * x, axis=-1)  # (n,)

    return jax.vmap(one)(xs, ys)


def averaging_predictions(xs: jax.Array, ys: jax.Array) -> jax.Array:
    """ŷ_i = x_iᵀ ŵ_i with ŵ_i = (1/(i−1)) Σ_{j<i} y_j x_j (ŵ_1 = 0).

    Shapes: xs (B, n, d), ys (B, n) → ŷ (B, n).
    """
    _check("averaging_predictions", xs, ys)
    M = _before(xs.shape[1])  # (n, n)
    count = jnp.maximum(M.sum(axis=1), 1.0)  # (n,)
    w = jnp.einsum("ij,bj,bjd->bid", M, ys, xs) / count[None, :, None]  # (B, n, d)
    return jnp.sum(w * xs, axis=-1)  # (B, n)


def nearest_neighbour_predictions(xs: jax.Array, ys: jax.Array, k: int = 3) -> jax.Array:
    """ŷ_i = the mean of y_j over the min(k, i − 1) earlier x_j nearest to x_i in Euclidean
    distance (0 when there is none).

    Shapes: xs (B, n, d), ys (B, n) → ŷ (B, n).
    """
    _check("nearest_neighbour_predictions", xs, ys)
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"nearest_neighbour_predictions: k must be a positive int, got {k!r}")
    n = xs.shape[1]
    d2 = jnp.sum((xs[:, :, None, :] - xs[:, None, :, :]) ** 2, axis=-1)  # (B, n, n): ‖x_i − x_j‖²
    d2 = jnp.where(_before(n)[None] > 0, d2, jnp.inf)  # only j < i
    neg, idx = jax.lax.top_k(-d2, min(k, n))  # (B, n, k): the nearest first
    valid = jnp.isfinite(neg).astype(ys.dtype)  # (B, n, k)
    y_near = jnp.take_along_axis(ys[:, None, :], idx, axis=2)  # (B, n, k)
    return jnp.sum(valid * y_near, axis=-1) / jnp.maximum(valid.sum(axis=-1), 1.0)  # (B, n)
