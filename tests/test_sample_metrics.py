"""The Fréchet distance against closed forms (identical, diagonal and commuting covariances,
1-D) and against scipy's matrix square root; the classifier read-outs on hand-made
probabilities. (The MMD is tested in tests/models/test_diffusion.py.)"""

import numpy as np
import pytest
import scipy.linalg

from jdl.sample_metrics import frechet_distance, gaussian_stats, label_entropy, mean_confidence


def random_cov(rng, d, rank=None):
    a = rng.normal(size=(d, rank or d))
    return a @ a.T / d


def scipy_frechet(mu1, cov1, mu2, cov2):
    """The usual FID code: sqrtm of the non-symmetric product, imaginary part dropped."""
    root = scipy.linalg.sqrtm(cov1 @ cov2).real
    return np.sum((mu1 - mu2) ** 2) + np.trace(cov1 + cov2 - 2 * root)


def test_identical_gaussians_are_at_distance_zero():
    rng = np.random.default_rng(0)
    mu, cov = rng.normal(size=16), random_cov(rng, 16)
    assert abs(frechet_distance(mu, cov, mu, cov)) < 1e-9


def test_diagonal_covariances_closed_form():
    # diagonal Σ's commute: d² = ‖μ₁ − μ₂‖² + Σ_i (√a_i − √b_i)²
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.1, 3, 8), rng.uniform(0.1, 3, 8)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    np.testing.assert_allclose(frechet_distance(mu1, np.diag(a), mu2, np.diag(b)), want, rtol=1e-12)


def test_commuting_covariances_in_a_rotated_basis():
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))  # a shared eigenbasis
    a, b = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    got = frechet_distance(np.zeros(6), q @ np.diag(a) @ q.T, np.zeros(6), q @ np.diag(b) @ q.T)
    np.testing.assert_allclose(got, np.sum((np.sqrt(a) - np.sqrt(b)) ** 2), rtol=1e-10)


def test_one_dimension_is_the_w2_distance_of_two_normals():
    # W₂²(N(m₁, s₁²), N(m₂, s₂²)) = (m₁ − m₂)² + (s₁ − s₂)²
    got = frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-0.5]), np.array([[0.25]]))
    np.testing.assert_allclose(got, 1.5 ** 2 + 1.5 ** 2, rtol=1e-12)


@pytest.mark.parametrize("rank", [None, 5])  # full rank, and singular (5 samples' worth in 12-D)
def test_against_scipy_sqrtm(rank):
    rng = np.random.default_rng(3)
    mu1, mu2 = rng.normal(size=12), rng.normal(size=12)
    cov1, cov2 = random_cov(rng, 12, rank), random_cov(rng, 12)
    want = scipy_frechet(mu1, cov1, mu2, cov2)
    np.testing.assert_allclose(frechet_distance(mu1, cov1, mu2, cov2), want, rtol=1e-6, atol=1e-8)
    # symmetric in its two arguments although the computation is not
    np.testing.assert_allclose(frechet_distance(mu2, cov2, mu1, cov1), want, rtol=1e-6, atol=1e-8)


def test_gaussian_stats_of_features_and_errors():
    f = np.random.default_rng(4).normal(size=(50, 3))
    mu, cov = gaussian_stats(f)
    np.testing.assert_allclose(mu, f.mean(0))
    np.testing.assert_allclose(cov, (f - mu).T @ (f - mu) / 49)
    with pytest.raises(ValueError, match=r"gaussian_stats: features must have shape \(n, d\) with n >= 2"):
        gaussian_stats(f[:1])
    with pytest.raises(ValueError, match=r"frechet_distance: need mu1, mu2 of shape \(d,\).*cov2 \(2, 2\)"):
        frechet_distance(mu, cov, mu[:2], cov[:2, :2])


def test_confidence_and_label_entropy():
    uniform_labels = np.eye(10)[np.arange(100) % 10]  # every class 10 times, each with p = 1
    assert mean_confidence(uniform_labels) == 1.0
    np.testing.assert_allclose(label_entropy(uniform_labels), np.log(10), rtol=1e-12)
    one_class = np.tile([0.6, 0.3, 0.1], (20, 1))
    assert label_entropy(one_class) == 0.0
    np.testing.assert_allclose(mean_confidence(one_class), 0.6)
    half = np.array([[0.9, 0.1], [0.2, 0.8]] * 5)  # two classes, equally often: log 2
    np.testing.assert_allclose(label_entropy(half), np.log(2), rtol=1e-12)
    with pytest.raises(ValueError, match=r"label_entropy: probs must have shape \(n, C\)"):
        label_entropy(np.ones(3))
