"""How close generated samples are to data: the maximum mean discrepancy (MMD) between two
sets of points under a sum of Gaussian kernels (Gretton et al. 2012), and the Fréchet distance
between Gaussians fitted to two sets of features (the FID of Heusel et al. 2017 when the
features are a classifier's), with the two classifier read-outs that go beside it: the mean
confidence of its predictions and the entropy of the predicted-class histogram."""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np


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


def gaussian_stats(features: Any) -> tuple[np.ndarray, np.ndarray]:
    """The mean and the unbiased covariance of a set of feature vectors, in float64:

        μ = (1/n) Σ_i f_i,   Σ = 1/(n − 1) Σ_i (f_i − μ)(f_i − μ)ᵀ

    Shapes: features (n, d), n ≥ 2 → μ (d,), Σ (d, d).
    """
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"gaussian_stats: features must have shape (n, d) with n >= 2, got {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def frechet_distance(mu1: Any, cov1: Any, mu2: Any, cov2: Any) -> float:
    """The Fréchet (2-Wasserstein²) distance between N(μ₁, Σ₁) and N(μ₂, Σ₂):

        d² = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^{1/2})

    computed in float64 by the eigen route, with no non-symmetric matrix square root:
    Tr (Σ₁Σ₂)^{1/2} = Σ_i √λ_i, where λ_i are the eigenvalues of the symmetric
    M = Σ₁^{1/2} Σ₂ Σ₁^{1/2} (similar to Σ₁Σ₂, so the same eigenvalues) and Σ₁^{1/2} comes from
    ``eigh`` of Σ₁. Eigenvalues that round below 0 (singular covariances, fewer samples than
    dimensions) are taken as 0, where ``scipy.linalg.sqrtm(Σ₁Σ₂)`` leaves a small imaginary part
    that the usual FID code throws away.

    Shapes: mu1, mu2 (d,); cov1, cov2 (d, d) symmetric positive semi-definite → a float.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    d = mu1.shape[0] if mu1.ndim == 1 else -1
    if mu1.ndim != 1 or mu2.shape != mu1.shape or cov1.shape != (d, d) or cov2.shape != (d, d):
        raise ValueError(f"frechet_distance: need mu1, mu2 of shape (d,) and cov1, cov2 of shape (d, d), got "
                         f"mu1 {mu1.shape}, cov1 {cov1.shape}, mu2 {mu2.shape}, cov2 {cov2.shape}")
    lam1, u1 = np.linalg.eigh(cov1)
    root1 = (u1 * np.sqrt(np.maximum(lam1, 0.0))) @ u1.T  # Σ₁^{1/2}
    m = root1 @ cov2 @ root1
    lam = np.linalg.eigvalsh((m + m.T) / 2)
    tr_sqrt = np.sum(np.sqrt(np.maximum(lam, 0.0)))
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2.0 * tr_sqrt)


def mean_confidence(probs: Any) -> float:
    """The classifier's mean top probability on a set of samples, mean_i max_c p(c | x_i): near 1
    when each sample looks clearly like one class (a quality read-out; it cannot see diversity).

    Shapes: probs (n, C), rows summing to 1 → a float.
    """
    p = np.asarray(probs, np.float64)
    if p.ndim != 2:
        raise ValueError(f"mean_confidence: probs must have shape (n, C), got {p.shape}")
    return float(p.max(1).mean())


def label_entropy(probs: Any) -> float:
    """The entropy (nats) of the histogram of predicted classes, H = −Σ_c h_c log h_c with
    h_c = (1/n) #{i : argmax p(· | x_i) = c}: log C when every class is predicted equally often
    (log 10 ≈ 2.303 for digits), 0 when all samples fall in one class (mode collapse).

    Shapes: probs (n, C) → a float.
    """
    p = np.asarray(probs)
    if p.ndim != 2:
        raise ValueError(f"label_entropy: probs must have shape (n, C), got {p.shape}")
    h = np.bincount(p.argmax(1), minlength=p.shape[1]) / len(p)
    h = h[h > 0]
    return float(-np.sum(h * np.log(h)))
