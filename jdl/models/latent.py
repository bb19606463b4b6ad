"""Linear latent-variable models, the course's linear introduction to generative models:
principal component analysis (by SVD, and by gradient descent on the reconstruction error) and
factor analysis fitted by expectation–maximization.

Both explain data x ∈ R^D by a few latent coordinates z ∈ R^k through a linear map. PCA finds
the k-dimensional subspace that keeps the most variance (equivalently: the least squared
reconstruction error); factor analysis is the probabilistic version with a per-feature noise

    z ~ N(0, I_k),   x | z ~ N(μ + Λz, Ψ),   Ψ diagonal   ⇒   x ~ N(μ, ΛΛᵀ + Ψ),

fitted by maximum likelihood. These are array functions on a whole data matrix (no ``Module``):
they have a closed form or an EM loop, not minibatch training.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp


class PCA(NamedTuple):
    """A fitted PCA: ``mean`` (D,), ``components`` (k, D) with orthonormal rows (the principal
    directions, by decreasing variance for ``pca``; any orthonormal basis of the same subspace
    for ``pca_gd``), ``variance`` (k,) the data's variance along each row."""

    mean: jax.Array
    components: jax.Array
    variance: jax.Array


class FactorAnalysis(NamedTuple):
    """A fitted factor analysis x = μ + Λz + ε: ``mean`` μ (D,), ``loadings`` Λ (D, k),
    ``noise_variance`` diag(Ψ) (D,), and ``log_likelihood``, the mean log p(x) of the training
    data after each EM iteration (n_iter,) — nondecreasing, as EM guarantees."""

    mean: jax.Array
    loadings: jax.Array
    noise_variance: jax.Array
    log_likelihood: jax.Array


def _check_data(name: str, x: jax.Array, k: int) -> None:
    if jnp.ndim(x) != 2:
        raise ValueError(f"{name}: expected data of shape (N, D), got shape {jnp.shape(x)}")
    n, d = x.shape
    if not isinstance(k, int) or not 1 <= k <= min(n, d):
        raise ValueError(f"{name}: k must be an int in [1, min(N, D)] = [1, {min(n, d)}], got {k!r}")


def pca(x: jax.Array, k: int) -> PCA:
    """PCA by the singular value decomposition of the centred data:

        X_c = X − x̄ = U S Vᵀ,   components = first k rows of Vᵀ,   variance_j = S_j² / (N − 1)

    The rows of Vᵀ are the eigenvectors of the covariance X_cᵀX_c/(N − 1). Each row's sign is
    fixed so that its largest-magnitude entry is positive (scikit-learn fixes it otherwise:
    compare subspaces, not signs).

    Shapes: x (N, D) → components (k, D).

    Args:
      x: the data, one example per row.
      k: the number of components.
    """
    _check_data("pca", x, k)
    mean = jnp.mean(x, axis=0)
    _, s, vt = jnp.linalg.svd(x - mean[None, :], full_matrices=False)  # s (min(N, D),), vt (min(N, D), D)
    v = vt[:k]  # (k, D)
    sign = jnp.sign(v[jnp.arange(k), jnp.argmax(jnp.abs(v), axis=1)])  # (k,)
    return PCA(mean, v * sign[:, None], s[:k] ** 2 / (x.shape[0] - 1))


def pca_gd(x: jax.Array, k: int, *, key: jax.Array, steps: int = 2000, lr: float = 0.5) -> PCA:
    """PCA by gradient descent on the reconstruction error of a tied linear autoencoder,

        L(W) = (1/N) Σ_i ‖x_i − W Wᵀ x_i‖²   (x centred, W ∈ R^{D×k}),   W ← W − η ∇L(W),

    whose minima are exactly the W with orthonormal columns spanning the top-k principal
    subspace (Baldi & Hornik, 1989): the same subspace as ``pca``, in some rotated basis. The
    error is evaluated through the covariance C = X_cᵀX_c/N, as
    L = tr C − 2 tr(WᵀCW) + tr(WᵀCW·WᵀW) (the square expanded), and the data are divided by
    √‖C‖_F first, which bounds every eigenvalue of C by 1 so that one ``lr`` suits any scale. The result is orthonormalized (QR) and rotated to
    the principal axes within the subspace (the eigenvectors of WᵀCW), so ``variance`` is
    comparable with ``pca``'s.

    Shapes: x (N, D) → components (k, D).

    Args:
      x: the data, one example per row.
      k: the number of components.
      key: the random key of W's initialization, N(0, 1/D).
      steps: gradient steps (run under ``lax.scan``; one compiled loop).
      lr: the step size η on the scaled data.
    """
    _check_data("pca_gd", x, k)
    return _pca_gd(x, k, key, steps, lr)


@functools.partial(jax.jit, static_argnums=(1, 3))
def _pca_gd(x: jax.Array, k: int, key: jax.Array, steps: int, lr: float) -> PCA:
    n, d = x.shape
    mean = jnp.mean(x, axis=0)
    xc = x - mean[None, :]  # (N, D)
    c = xc.T @ xc / n  # (D, D)
    c = c / jnp.linalg.norm(c)  # the data scaled by √‖C‖_F: every eigenvalue ≤ 1

    def loss(w):  # (1/N) Σ ‖x − W Wᵀ x‖², expanded in C: each step is O(D²k), not O(NDk)
        wcw = w.T @ c @ w  # (k, k)
        return jnp.trace(c) - 2 * jnp.trace(wcw) + jnp.sum(wcw * (w.T @ w))

    def step(w, _):
        return w - lr * jax.grad(loss)(w), None

    w0 = jax.random.normal(key, (d, k), x.dtype) / math.sqrt(d)
    w, _ = jax.lax.scan(step, w0, None, length=steps)
    q, _ = jnp.linalg.qr(w)  # (D, k) orthonormal columns, same span
    c_k = (xc @ q).T @ (xc @ q) / (n - 1)  # (k, k) covariance in the subspace
    var, rot = jnp.linalg.eigh(c_k)  # ascending
    v = (q @ rot[:, ::-1]).T  # (k, D), principal axes first
    sign = jnp.sign(v[jnp.arange(k), jnp.argmax(jnp.abs(v), axis=1)])
    return PCA(mean, v * sign[:, None], var[::-1])


def pca_transform(model: PCA, x: jax.Array) -> jax.Array:
    """The coordinates of x in the principal basis: z = (x − x̄) Vᵀ.

    Shapes: x (N, D) → z (N, k)."""
    return (x - model.mean[None, :]) @ model.components.T


def pca_reconstruct(model: PCA, z: jax.Array) -> jax.Array:
    """Back to data space: x̂ = x̄ + z V, the projection of x onto the affine subspace.

    Shapes: z (N, k) → x̂ (N, D)."""
    return model.mean[None, :] + z @ model.components


def fa_log_likelihood(model: FactorAnalysis, x: jax.Array) -> jax.Array:
    """Per-example log-density under the factor model's marginal x ~ N(μ, Σ), Σ = ΛΛᵀ + Ψ:

        log p(x) = −½ [D log 2π + log det Σ + (x − μ)ᵀ Σ⁻¹ (x − μ)]

    (computed through the Cholesky factor of Σ). Shapes: x (N, D) → (N,)."""
    return _gaussian_log_density(x - model.mean[None, :], model.loadings @ model.loadings.T + jnp.diag(model.noise_variance))


def _gaussian_log_density(xc: jax.Array, cov: jax.Array) -> jax.Array:
    """log N(x; μ, Σ) of centred rows xc (N, D) → (N,)."""
    chol = jnp.linalg.cholesky(cov)  # (D, D) lower
    sol = jax.scipy.linalg.solve_triangular(chol, xc.T, lower=True)  # (D, N) = L⁻¹(x − μ)
    log_det = 2 * jnp.sum(jnp.log(jnp.diag(chol)))
    return -0.5 * (xc.shape[1] * math.log(2 * math.pi) + log_det + jnp.sum(jnp.square(sol), axis=0))


def fa_posterior(model: FactorAnalysis, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The posterior of the factors, p(z | x) = N(m, G) (the E step):

        G = (I + ΛᵀΨ⁻¹Λ)⁻¹,   m = G ΛᵀΨ⁻¹ (x − μ)

    Shapes: x (N, D) → m (N, k), G (k, k) (the same for every x)."""
    lam, psi = model.loadings, model.noise_variance
    k = lam.shape[1]
    lam_psi = lam.T / psi[None, :]  # (k, D) = ΛᵀΨ⁻¹
    g = jnp.linalg.inv(jnp.eye(k, dtype=lam.dtype) + lam_psi @ lam)  # (k, k)
    return (x - model.mean[None, :]) @ (g @ lam_psi).T, g


def factor_analysis(x: jax.Array, k: int, *, key: jax.Array, n_iter: int = 500,
                    min_variance: float = 1e-6) -> FactorAnalysis:
    """Factor analysis x = μ + Λz + ε (z ~ N(0, I_k), ε ~ N(0, Ψ), Ψ diagonal) fitted by EM.

    μ is the sample mean. Each iteration, with S = (1/N) Σ (x − μ)(x − μ)ᵀ:

        E step:  G = (I + ΛᵀΨ⁻¹Λ)⁻¹,   m_i = G ΛᵀΨ⁻¹ (x_i − μ),   E[z zᵀ | x_i] = G + m_i m_iᵀ
        M step:  Λ ← [(1/N) Σ (x_i − μ) m_iᵀ] [G + (1/N) Σ m_i m_iᵀ]⁻¹
                 Ψ ← diag(S − Λ (1/N) Σ m_i (x_i − μ)ᵀ),  floored at ``min_variance``

    and the likelihood never decreases. The floor keeps Ψ invertible for features with
    (almost) no variance of their own, such as the always-blank corner pixels of the digits.

    Shapes: x (N, D) → loadings (D, k), noise_variance (D,).

    Args:
      x: the data, one example per row.
      k: the number of factors.
      key: the random key of Λ's initialization (small Gaussian entries).
      n_iter: EM iterations (under ``lax.scan``).
      min_variance: the floor on every Ψ_jj.
    """
    _check_data("factor_analysis", x, k)
    return _factor_analysis(x, k, key, n_iter, min_variance)


@functools.partial(jax.jit, static_argnums=(1, 3))
def _factor_analysis(x: jax.Array, k: int, key: jax.Array, n_iter: int, min_variance: float) -> FactorAnalysis:
    """EM on the sufficient statistic S alone: with B = GΛᵀΨ⁻¹ (so m_i = B(x_i − μ)),
    (1/N) Σ (x − μ) mᵀ = S Bᵀ and (1/N) Σ m mᵀ = B S Bᵀ; each iteration is O(D²k + D³)."""
    n, d = x.shape
    mean = jnp.mean(x, axis=0)
    xc = x - mean[None, :]  # (N, D)
    s = xc.T @ xc / n  # (D, D)

    def em(carry, _):
        lam, psi = carry
        lam_psi = lam.T / psi[None, :]  # (k, D) = ΛᵀΨ⁻¹
        g = jnp.linalg.inv(jnp.eye(k, dtype=x.dtype) + lam_psi @ lam)  # (k, k)
        b = g @ lam_psi  # (k, D)
        xm = s @ b.T  # (D, k) = (1/N) Σ (x − μ) mᵀ
        lam = xm @ jnp.linalg.inv(g + b @ xm)  # (D, k)
        psi = jnp.maximum(jnp.diag(s) - jnp.sum(lam * xm, axis=1), min_variance)  # (D,)
        return (lam, psi), _mean_log_likelihood(s, lam @ lam.T + jnp.diag(psi))

    lam0 = 0.1 * jnp.sqrt(jnp.mean(jnp.diag(s))) * jax.random.normal(key, (d, k), x.dtype)
    (lam, psi), ll = jax.lax.scan(em, (lam0, jnp.maximum(jnp.diag(s), min_variance)), None, length=n_iter)
    return FactorAnalysis(mean, lam, psi, ll)


def _mean_log_likelihood(s: jax.Array, cov: jax.Array) -> jax.Array:
    """(1/N) Σ log N(x_i; μ, Σ) = −½ [D log 2π + log det Σ + tr(Σ⁻¹ S)], S the data's covariance."""
    chol = jnp.linalg.cholesky(cov)  # (D, D) lower
    log_det = 2 * jnp.sum(jnp.log(jnp.diag(chol)))
    trace = jnp.trace(jax.scipy.linalg.cho_solve((chol, True), s))
    return -0.5 * (s.shape[0] * math.log(2 * math.pi) + log_det + trace)
