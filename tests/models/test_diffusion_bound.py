"""The DDPM variational bound: the discretized Gaussian decoder against scipy's normal CDF,
and the whole bound (its closed-form KL decomposition) against a plain Monte-Carlo estimate of
its definition, −E_q[log p(x_{0:T}) − log q(x_{1:T} | x_0)] over forward trajectories."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from jdl.models import diffusion
from jdl.models.diffusion_bound import ddpm_bound, discretized_gaussian_log_likelihood


def log_bin_mass(a, b, mean, sigma):
    """log(Φ(b) − Φ(a)) for N(mean, σ²) by scipy, from the tail the bin lies in (log CDF left of
    the mean, log survival function right of it), so that far bins stay finite."""
    n = scipy.stats.norm(mean, sigma)
    right = a > mean
    log_hi = np.where(right, n.logsf(a), n.logcdf(b))
    log_lo = np.where(right, n.logsf(b), n.logcdf(a))
    return log_hi + np.log1p(-np.exp(log_lo - log_hi))


def test_discretized_gaussian_against_scipy_and_sums_to_one():
    levels = 5
    x = np.linspace(-1, 1, levels)  # −1, −0.5, 0, 0.5, 1: bins of half-width 0.25
    edges = np.concatenate([[-np.inf], (x[:-1] + x[1:]) / 2, [np.inf]])
    with jax.enable_x64(True):
        # the last two: bins 10–40 σ from the mean, where Φ(b) − Φ(a) itself rounds to 0
        for mean, sigma in ((0.1, 0.3), (0.9, 0.05), (-3.0, 0.2), (0.9, 0.01)):
            got = np.asarray(discretized_gaussian_log_likelihood(jnp.asarray(x), jnp.full(levels, mean), sigma, levels))
            np.testing.assert_allclose(got, log_bin_mass(edges[:-1], edges[1:], mean, sigma), rtol=1e-9)
            np.testing.assert_allclose(np.exp(got).sum(), 1.0, rtol=1e-12)
    with pytest.raises(ValueError, match="levels must be an int >= 2"):
        discretized_gaussian_log_likelihood(jnp.zeros(1), jnp.zeros(1), 1.0, 1)


def eps_fn(x, t):  # any predictor will do: the bound holds for every model
    return 0.4 * x + 0.05 * t.reshape(-1, 1)


def trajectory_estimate(s, x0, levels, variance, n, rng):
    """−log p(x_{0:T}) + log q(x_{1:T} | x_0) averaged over n forward trajectories, float64 numpy."""
    betas, alphas, abar = (np.asarray(a, np.float64) for a in s)
    T = len(betas)
    abar_prev = np.concatenate([[1.0], abar[:-1]])
    sigma2 = betas if variance == "beta" else (1 - abar_prev) / (1 - abar) * betas
    log_n = lambda x, m, v: -0.5 * ((x - m) ** 2 / v + np.log(2 * np.pi * v))  # noqa: E731
    x = np.repeat(x0[None], n, 0)  # (n, D)
    xs, log_q = [x], 0.0
    for t in range(1, T + 1):
        x_new = np.sqrt(alphas[t - 1]) * x + np.sqrt(betas[t - 1]) * rng.normal(size=x.shape)
        log_q = log_q + log_n(x_new, np.sqrt(alphas[t - 1]) * x, betas[t - 1]).sum(1)
        x = x_new
        xs.append(x)
    log_p = log_n(xs[T], 0.0, 1.0).sum(1)
    for t in range(T, 0, -1):
        eps = 0.4 * xs[t] + 0.05 * t
        mean = (xs[t] - betas[t - 1] / np.sqrt(1 - abar[t - 1]) * eps) / np.sqrt(alphas[t - 1])
        if t > 1:
            log_p = log_p + log_n(xs[t - 1], mean, sigma2[t - 1]).sum(1)
        else:
            lo = np.where(x0 == -1, -np.inf, x0 - 1 / (levels - 1))
            hi = np.where(x0 == 1, np.inf, x0 + 1 / (levels - 1))
            sd = np.sqrt(betas[0])
            log_p = log_p + np.log(scipy.stats.norm.cdf(hi, mean, sd) - scipy.stats.norm.cdf(lo, mean, sd)).sum(1)
    w = log_q - log_p
    return w.mean(), w.std() / np.sqrt(n)


@pytest.mark.parametrize("variance", ["beta", "posterior"])
def test_bound_equals_monte_carlo_of_its_definition(variance):
    levels, n = 5, 100_000
    x0 = np.array([-1.0, 0.5, 0.0])  # one image of D = 3 pixels, an end bin among them
    with jax.enable_x64(True):
        s = diffusion.linear_schedule(4, 0.05, 0.4)
        b = ddpm_bound(eps_fn, s, jnp.asarray(np.tile(x0, (10_000, 1))), jax.random.key(0), levels=levels,
                       variance=variance)
        total = np.asarray(b.total)
        np.testing.assert_allclose(total, b.prior + b.diffusion + b.decoder, rtol=1e-12)
        np.testing.assert_allclose(total, b.prior + b.per_step.sum(0), rtol=1e-12)
    got, got_se = total.mean(), total.std() / np.sqrt(len(total))
    want, want_se = trajectory_estimate(s, x0, levels, variance, n, np.random.default_rng(0))
    assert 5 < want < 10  # (6.0 and 9.1 nats: every term matters at this size)
    assert abs(got - want) < 4 * np.hypot(got_se, want_se), (got, got_se, want, want_se)


def test_bad_variance():
    with pytest.raises(ValueError, match="ddpm_bound: variance must be 'beta' or 'posterior'"):
        ddpm_bound(eps_fn, diffusion.linear_schedule(4), jnp.zeros((1, 2)), jax.random.key(0), levels=5, variance="x")
