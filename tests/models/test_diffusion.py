"""DDPM and DDIM: the closed-form forward marginal against iterated single steps (Monte Carlo
moments), both schedules against their formulas in float64, the samplers against identities
(DDIM with η = 1 on every step is DDPM's ancestral sampler; η = 0 is deterministic) and against
the exact noise predictor of Gaussian data, where the sampled distribution is known."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl import optim
from jdl.models import TimeMLP, diffusion, time_embedding
from jdl.models.denoisers import eps_fn
from jdl.sample_metrics import median_bandwidth, mmd2
from jdl.train import init_train_state, make_step
from tests.helpers import assert_init_shapes, draw_normal


def test_linear_schedule_matches_its_formula():
    with jax.enable_x64(True):
        s = diffusion.linear_schedule(1000)
        beta = 1e-4 + np.arange(1000) / 999 * (0.02 - 1e-4)
        np.testing.assert_allclose(s.betas, beta, rtol=1e-12)
        np.testing.assert_allclose(s.alpha_bars, np.cumprod(1 - beta), rtol=1e-12)
        # Ho et al.'s schedule leaves ᾱ_T ≈ 4.0e-5: x_T is nearly pure noise
        assert 3.9e-5 < float(s.alpha_bars[-1]) < 4.1e-5


def test_cosine_schedule_matches_nichol_dhariwal():
    with jax.enable_x64(True):
        T, s_off = 1000, 0.008
        s = diffusion.cosine_schedule(T)
        f = np.cos(np.pi / 2 * (np.arange(T + 1) / T + s_off) / (1 + s_off)) ** 2
        abar = f[1:] / f[0]
        clipped = np.asarray(s.betas) >= 0.999 - 1e-15
        assert clipped.sum() == 1 and clipped[-1]  # only β_T is clipped (f(T) = 0)
        np.testing.assert_allclose(s.alpha_bars[:-1], abar[:-1], rtol=1e-10)
        np.testing.assert_allclose(s.betas[:-1], 1 - abar[:-1] / np.r_[1.0, abar[:-2]], rtol=1e-10)
        # ᾱ at the half-way step: cos²(π/2·(0.5 + s)/(1 + s))/cos²(π/2·s/(1 + s))
        assert abs(float(s.alpha_bars[499]) - abar[499]) < 1e-12 and 0.49 < abar[499] < 0.51


@pytest.mark.parametrize("t", [1, 7, 30])
def test_forward_marginal_equals_iterated_single_steps(t):
    """x_t by t steps of q(x_s | x_{s−1}) has mean √ᾱ_t·x_0 and variance 1 − ᾱ_t, as q_sample's."""
    s = diffusion.linear_schedule(50, 1e-3, 0.1)
    n, x0 = 40_000, jnp.array([1.5, -2.0, 0.0])
    x = jnp.broadcast_to(x0, (n, 3))
    keys = jax.random.split(jax.random.key(t), t + 1)
    for step in range(1, t + 1):
        x = diffusion.q_step(s, x, jnp.full((n,), step), draw_normal(keys[step], x.shape))
    closed = diffusion.q_sample(s, jnp.broadcast_to(x0, (n, 3)), jnp.full((n,), t), draw_normal(keys[0], (n, 3)))
    abar = float(s.alpha_bars[t - 1])
    for draws in (x, closed):
        se_mean, se_var = np.sqrt((1 - abar) / n), (1 - abar) * np.sqrt(2 / n)
        np.testing.assert_array_less(np.abs(np.mean(draws, 0) - np.sqrt(abar) * x0), 4 * se_mean)
        np.testing.assert_array_less(np.abs(np.var(draws, 0) - (1 - abar)), 4 * se_var)


def _gaussian_eps(schedule, mu, sd):
    """The exact ε-predictor for data N(μ, sd²·I): x_t ~ N(√ᾱ μ, (ᾱ sd² + 1 − ᾱ) I) and
    E[ε | x_t] = √(1 − ᾱ)(x_t − √ᾱ μ)/(ᾱ sd² + 1 − ᾱ)."""
    mu = jnp.reshape(jnp.asarray(mu), (1, -1))  # (1, D) or (1, 1)

    def fn(x, t):
        abar = schedule.alpha_bars[t - 1][:, None]
        return jnp.sqrt(1 - abar) * (x - jnp.sqrt(abar) * mu) / (abar * sd ** 2 + 1 - abar)
    return fn


def test_ddim_with_eta_1_on_every_step_is_ancestral_sampling():
    with jax.enable_x64(True):
        s = diffusion.cosine_schedule(60)
        f = _gaussian_eps(s, 0.7, 0.3)
        a = diffusion.ancestral_sample(f, s, (16, 2), jax.random.key(3), variance="posterior")
        b = diffusion.ddim_sample(f, s, (16, 2), jax.random.key(3), steps=60, eta=1.0)
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
        c = diffusion.ancestral_sample(f, s, (16, 2), jax.random.key(3), variance="beta")
        assert np.max(np.abs(np.asarray(a) - np.asarray(c))) > 1e-3  # σ_t² = β_t is another sampler


def test_ddim_eta_0_is_deterministic_and_follows_its_formula():
    with jax.enable_x64(True):
        s = diffusion.linear_schedule(40, 1e-3, 0.2)
        f = _gaussian_eps(s, -0.5, 0.5)
        x_T = draw_normal(jax.random.key(0), (8, 2), jnp.float64)
        a = diffusion.ddim_sample(f, s, x_T.shape, jax.random.key(1), steps=8, x_T=x_T)
        b = diffusion.ddim_sample(f, s, x_T.shape, jax.random.key(2), steps=8, x_T=x_T)
        np.testing.assert_array_equal(a, b)  # the key only draws x_T
        taus = [5, 10, 15, 20, 25, 30, 35, 40]
        np.testing.assert_array_equal(diffusion.ddim_timesteps(40, 8), taus)
        abar = np.r_[1.0, np.asarray(s.alpha_bars)]
        x = np.asarray(x_T)
        for t, t_prev in zip(taus[::-1], [35, 30, 25, 20, 15, 10, 5, 0]):  # the update, by hand in numpy
            eps = np.asarray(f(jnp.asarray(x), jnp.full((8,), t)))
            x0 = (x - np.sqrt(1 - abar[t]) * eps) / np.sqrt(abar[t])
            x = np.sqrt(abar[t_prev]) * x0 + np.sqrt(1 - abar[t_prev]) * eps
        np.testing.assert_allclose(a, x, rtol=1e-10)


def test_samplers_with_the_exact_predictor_reproduce_gaussian_data():
    """Data N(μ, 0.5²·I) and its exact ε-predictor: ancestral sampling and DDIM on every step
    give back μ and σ; DDIM on fewer steps shrinks the spread (a discretization error of its
    deterministic update), less and less as the steps grow."""
    mu, sd, n = jnp.array([2.0, -1.0]), 0.5, 20_000
    s = diffusion.cosine_schedule(200)
    f = _gaussian_eps(s, mu, sd)
    x = diffusion.ancestral_sample(f, s, (n, 2), jax.random.key(5))
    np.testing.assert_allclose(np.mean(x, 0), mu, atol=0.02)
    np.testing.assert_allclose(np.std(x, 0), sd, rtol=0.03)
    spread = []
    for steps in (10, 50, 200):
        x = diffusion.ddim_sample(f, s, (n, 2), jax.random.key(5), steps=steps)
        np.testing.assert_allclose(np.mean(x, 0), mu, atol=0.02)
        spread.append(float(np.mean(np.std(x, 0))))
    assert spread[0] < spread[1] < spread[2] and abs(spread[2] - sd) < 0.015, spread


def test_ddpm_loss_is_the_noise_regression_with_the_keys_it_splits():
    s = diffusion.linear_schedule(30)
    x0 = draw_normal(jax.random.key(0), (5, 3))
    f = lambda x, t: 0.1 * x * t[:, None]  # noqa: E731  any function of (x_t, t)
    key = jax.random.key(7)
    kt, ke = jax.random.split(key)
    t = jax.random.randint(kt, (5,), 1, 31)
    eps = draw_normal(ke, (5, 3))
    abar = np.asarray(s.alpha_bars)[np.asarray(t) - 1][:, None]
    x_t = np.sqrt(abar) * np.asarray(x0) + np.sqrt(1 - abar) * np.asarray(eps)
    want = np.mean((np.asarray(eps) - 0.1 * x_t * np.asarray(t)[:, None]) ** 2)
    np.testing.assert_allclose(diffusion.ddpm_loss(f, s, x0, key), want, rtol=1e-5)


def test_time_mlp_shapes_embedding_and_errors():
    m = TimeMLP(3, T=50, hidden=16, n_layers=2, d_time=8)
    x = jnp.ones((4, 3))
    params, _ = m.init(jax.random.key(0), x)
    assert jax.tree.map(jnp.shape, params)["l1_t"] == {"w": (16, 16)}
    y, _ = m.apply(params, {}, x, t=jnp.array([1, 2, 3, 50]))
    assert y.shape == (4, 3)
    with jax.enable_x64(True):
        e = time_embedding(jnp.array([0, 7]), 8, 50)
        i = np.arange(4)
        np.testing.assert_allclose(e[1, 0::2], np.sin(7 / 10000 ** (2 * i / 8)), rtol=1e-6)
        np.testing.assert_allclose(e[1, 1::2], np.cos(7 / 10000 ** (2 * i / 8)), rtol=1e-6)
    with pytest.raises(TypeError, match=r"TimeMLP: apply needs the diffusion steps"):
        m.apply(params, {}, x)
    with pytest.raises(ValueError, match=r"TimeMLP: t must have shape \(B,\) = \(4,\), got \(3,\)"):
        m.apply(params, {}, x, t=jnp.array([1, 2, 3]))
    with pytest.raises(ValueError, match="TimeMLP: expected an input of rank 2"):
        m.init(jax.random.key(0), jnp.ones((4, 3, 1)))
    with pytest.raises(ValueError, match="TimeMLP: hidden must be a positive int, got 0"):
        TimeMLP(3, 50, hidden=0)


def test_schedule_and_sampler_errors():
    with pytest.raises(ValueError, match="linear_schedule: need 0 < beta_1 <= beta_T < 1, got 0.1, 0.01"):
        diffusion.linear_schedule(10, 0.1, 0.01)
    with pytest.raises(ValueError, match="cosine_schedule: T must be a positive int, got 0"):
        diffusion.cosine_schedule(0)
    with pytest.raises(ValueError, match=r"ddim_timesteps: steps must be an int in 1 … T=10, got 11"):
        diffusion.ddim_timesteps(10, 11)
    with pytest.raises(ValueError, match="ancestral_sample: variance must be 'beta' or 'posterior'"):
        diffusion.ancestral_sample(lambda x, t: x, diffusion.linear_schedule(5), (2, 2), jax.random.key(0),
                                   variance="small")
    with pytest.raises(ValueError, match=r"q_sample: need x0 and eps of one shape"):
        diffusion.q_sample(diffusion.linear_schedule(5), jnp.ones((2, 2)), jnp.ones(2, int), jnp.ones((2, 3)))


def test_mmd2_against_numpy_and_its_errors():
    x = np.random.default_rng(0).normal(size=(7, 2))
    y = np.random.default_rng(1).normal(size=(5, 2)) + 1.0
    k = lambda a, b: sum(np.exp(-((a[:, None] - b[None]) ** 2).sum(-1) / (2 * s * s)) for s in (0.5, 2.0))  # noqa: E731
    want = k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean()
    np.testing.assert_allclose(mmd2(x, y, (0.5, 2.0)), want, rtol=1e-5)
    assert abs(float(mmd2(x, x, (1.0,)))) < 1e-6
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))[np.triu_indices(7, 1)]
    np.testing.assert_allclose(median_bandwidth(x), np.median(d), rtol=1e-5)
    with pytest.raises(ValueError, match=r"mmd2: x and y must have the same point size D"):
        mmd2(x, np.ones((3, 3)), (1.0,))


def test_a_tiny_ddpm_learns_moons():
    """A small ε-MLP trained briefly on moons (standardized) samples points closer to the test set
    than noise does, within 3× the MMD of two data draws (the experiment meets 2× with more
    training; docs/diffusion.md)."""
    from jdl import data

    x, _ = data.load("moons", "train", validation_fraction=0)
    test, _ = data.load("moons", "test")
    mu, sd = x.mean(0), x.std(0)
    s = diffusion.linear_schedule(100, 1e-4, 0.2)
    m = TimeMLP(2, 100, hidden=64, n_layers=3)
    ts = init_train_state(m, optim.adam(3e-3), jnp.zeros((1, 2)), seed=0)
    step = make_step(lambda p, st, b, k: (diffusion.ddpm_loss(eps_fn(m, p), s, b, k), (st, {})), optim.adam(3e-3))
    xs = jnp.asarray((x - mu) / sd)
    for i in range(600):
        ts, _ = step(ts, xs[jax.random.randint(jax.random.key(i), (128,), 0, len(xs))])
    samples = np.asarray(diffusion.ancestral_sample(eps_fn(m, ts.params), s, (200, 2), jax.random.key(1))) * sd + mu
    bw = [float(median_bandwidth(test)) * c for c in (0.25, 0.5, 1.0)]
    rng = np.random.default_rng(0)
    ref = np.mean([float(mmd2(x[rng.choice(len(x), 200, replace=False)], test, bw)) for _ in range(10)])
    model = float(mmd2(samples, test, bw))
    noise = float(mmd2(rng.normal(size=(200, 2)) * sd + mu, test, bw))
    assert np.sqrt(model / ref) < 3.0 and model < noise / 4, (model, ref, noise)


def test_clipped_ddim_with_eta_1_is_the_clipped_ancestral_sampler():
    """With x̂_0 clipped, DDIM (η = 1, every step) and the ancestral sampler through the posterior
    mean √ᾱ_{t−1}β_t/(1−ᾱ_t)·x̂_0 + √α_t(1−ᾱ_{t−1})/(1−ᾱ_t)·x_t still agree; a clip wide enough
    to hold every x̂_0 changes nothing."""
    with jax.enable_x64(True):
        s = diffusion.cosine_schedule(60)
        f = _gaussian_eps(s, 0.7, 0.3)
        kw = {"variance": "posterior"}
        a = diffusion.ancestral_sample(f, s, (16, 2), jax.random.key(3), clip_x0=(-0.2, 0.8), **kw)
        b = diffusion.ddim_sample(f, s, (16, 2), jax.random.key(3), steps=60, eta=1.0, clip_x0=(-0.2, 0.8))
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
        plain = diffusion.ancestral_sample(f, s, (16, 2), jax.random.key(3), **kw)
        assert np.max(np.abs(np.asarray(a) - np.asarray(plain))) > 1e-2  # the clip was active
        wide = diffusion.ancestral_sample(f, s, (16, 2), jax.random.key(3), clip_x0=(-1e6, 1e6), **kw)
        np.testing.assert_allclose(wide, plain, rtol=1e-9, atol=1e-9)
    x0, eps = diffusion.predict_x0(jnp.array([[0.5, 3.0]]), jnp.array([[0.1, -0.2]]), jnp.float32(0.25), (-1.0, 1.0))
    want = np.clip((np.array([0.5, 3.0]) - np.sqrt(0.75) * np.array([0.1, -0.2])) / 0.5, -1, 1)
    np.testing.assert_allclose(x0[0], want, rtol=1e-6)
    np.testing.assert_allclose(eps[0], (np.array([0.5, 3.0]) - 0.5 * want) / np.sqrt(0.75), rtol=1e-6)
    with pytest.raises(ValueError, match=r"ddim_sample: clip_x0 must be None or \(lo, hi\) with lo < hi"):
        diffusion.ddim_sample(f, s, (2, 2), jax.random.key(0), steps=5, clip_x0=(1.0, -1.0))


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_ddim_recovers_gaussian_moments_and_the_clip_stops_the_cosine_blow_up(name):
    """Data N(μ, 0.3²·I) inside [−1, 1] and its exact ε-predictor, in float32: DDIM on every step
    returns μ and σ (to DDIM's discretization error, 1-3%) with and without the x̂_0 clip, on
    both schedules. Then a network error, a
    constant δ = 0.05 added to ε̂: the cosine schedule's ᾱ_T ≈ 6e-8 turns it into an error of
    δ·√((1−ᾱ_T)/ᾱ_T) ≈ 200 in the first x̂_0, and unclipped DDIM on 10 steps lands several units
    from μ; clipped to [−1, 1], its mean is off by about 2δ, as on the linear schedule."""
    mu, sd, n = jnp.array([0.3, -0.2]), 0.3, 20_000
    s = diffusion.linear_schedule(200, 1e-4, 0.1) if name == "linear" else diffusion.cosine_schedule(200)
    exact = _gaussian_eps(s, mu, sd)
    for clip in (None, (-1.0, 1.0)):
        x = diffusion.ddim_sample(exact, s, (n, 2), jax.random.key(5), steps=200, clip_x0=clip)
        np.testing.assert_allclose(np.mean(x, 0), mu, atol=0.01)
        np.testing.assert_allclose(np.std(x, 0), sd, rtol=0.04)  # DDIM's own discretization: 1-3% low
    biased = lambda x, t: exact(x, t) + 0.05  # noqa: E731
    clipped = diffusion.ddim_sample(biased, s, (n, 2), jax.random.key(5), steps=10, clip_x0=(-1.0, 1.0))
    assert np.max(np.abs(np.mean(clipped, 0) - mu)) < 0.13, np.mean(clipped, 0)
    unclipped = diffusion.ddim_sample(biased, s, (n, 2), jax.random.key(5), steps=10)
    error = np.max(np.abs(np.mean(unclipped, 0) - mu))
    assert (error > 5.0) if name == "cosine" else (error < 0.13), (name, error)
