"""PCA (SVD and gradient descent) and factor analysis against scikit-learn on the same data."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA as SkPCA
from sklearn.decomposition import FactorAnalysis as SkFA
from threadpoolctl import threadpool_limits

from jdl.data import load
from jdl.models import latent


@pytest.fixture(scope="module")
def digits():
    x = load("digits", "train")[0].reshape(-1, 64)
    return x[:, x.var(axis=0) > 1e-3]  # (1293, 52): no always-blank pixels (see factor_analysis)


def sk(estimator, x):
    """Fit a scikit-learn estimator on one BLAS thread (many threads spin for seconds on this
    shared 2-core machine, for matrices this small)."""
    with threadpool_limits(1):
        return estimator.fit(x)


def test_pca_svd_and_gd_span_sklearns_subspace(digits, k=4):
    ref = sk(SkPCA(k), digits)
    by_svd = latent.pca(jnp.asarray(digits), k)
    by_gd = latent.pca_gd(jnp.asarray(digits), k, key=jax.random.key(1), steps=1000)
    for fitted in (by_svd, by_gd):
        angles = subspace_angles(ref.components_.T, np.asarray(fitted.components).T)
        assert angles.max() < 1e-4
        np.testing.assert_allclose(fitted.variance, ref.explained_variance_, rtol=1e-4)
        np.testing.assert_allclose(fitted.components @ fitted.components.T, np.eye(k), atol=1e-5)
    # same axes, up to sign, for the SVD one
    np.testing.assert_allclose(np.abs(by_svd.components), np.abs(ref.components_), atol=1e-4)


def test_pca_transform_and_reconstruct_match_sklearn(digits):
    ref = sk(SkPCA(3), digits)
    m = latent.pca(jnp.asarray(digits), 3)
    z = latent.pca_transform(m, jnp.asarray(digits))
    np.testing.assert_allclose(np.abs(z), np.abs(ref.transform(digits)), atol=1e-4)
    np.testing.assert_allclose(latent.pca_reconstruct(m, z), ref.inverse_transform(ref.transform(digits)), atol=1e-4)


def test_factor_analysis_log_likelihood_within_1_percent_of_sklearn(digits):
    fa = latent.factor_analysis(jnp.asarray(digits), 5, key=jax.random.key(0), n_iter=500)
    ours = float(jnp.mean(latent.fa_log_likelihood(fa, jnp.asarray(digits))))
    theirs = sk(SkFA(5, random_state=0), digits).score(digits)
    assert abs(ours - theirs) < 0.01 * abs(theirs)
    # EM never lowers the likelihood, and the last iterate's trace equals the direct evaluation
    ll = np.asarray(fa.log_likelihood)
    assert np.all(np.diff(ll) > -1e-4 * abs(ll[-1]))
    np.testing.assert_allclose(ll[-1], ours, rtol=1e-5)


def test_factor_analysis_recovers_a_planted_model():
    rng = np.random.default_rng(0)
    lam = rng.normal(size=(8, 2))
    psi = rng.uniform(0.1, 0.5, size=8)
    x = rng.normal(size=(2000, 2)) @ lam.T + rng.normal(size=(2000, 8)) * np.sqrt(psi) + 3.0
    fa = latent.factor_analysis(jnp.asarray(x, jnp.float32), 2, key=jax.random.key(0), n_iter=300)
    # Λ is identified up to a rotation: compare ΛΛᵀ + Ψ and Ψ
    np.testing.assert_allclose(fa.noise_variance, psi, rtol=0.2, atol=0.02)
    np.testing.assert_allclose(fa.loadings @ fa.loadings.T, lam @ lam.T, atol=0.25)
    ours = float(jnp.mean(latent.fa_log_likelihood(fa, jnp.asarray(x, jnp.float32))))
    ref = sk(SkFA(2), x)
    assert abs(ours - ref.score(x)) < 1e-3 * abs(ours)
    # the posterior mean m = GΛᵀΨ⁻¹(x − μ) equals sklearn's transform for the same parameters
    ref.components_, ref.noise_variance_, ref.mean_ = (np.asarray(fa.loadings, np.float64).T,
                                                        np.asarray(fa.noise_variance, np.float64), np.asarray(fa.mean))
    m, _ = latent.fa_posterior(fa, jnp.asarray(x[:50], jnp.float32))
    np.testing.assert_allclose(m, ref.transform(x[:50]), atol=1e-4)


def test_errors():
    with pytest.raises(ValueError, match=r"pca: expected data of shape \(N, D\), got shape \(3,\)"):
        latent.pca(jnp.ones(3), 1)
    with pytest.raises(ValueError, match=r"factor_analysis: k must be an int in \[1, min\(N, D\)\] = \[1, 4\], got 9"):
        latent.factor_analysis(jnp.ones((10, 4)), 9, key=jax.random.key(0))
