"""The VAE: the closed-form KL against Monte Carlo, the reparameterized gradient against the
analytic one, the ELBO and the importance-weighted bound against log p(x) computed exactly for
a linear-Gaussian VAE, and the loss against PyTorch's distributions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal, norm

import jdl
from jdl import losses
from jdl.models import vae as vae_lib

D, L, SIGMA = 5, 2, 0.5


def test_gaussian_kl_equals_a_monte_carlo_estimate():
    rng = np.random.default_rng(0)
    mu, logvar = rng.normal(size=(3, 4)), rng.normal(scale=0.7, size=(3, 4))
    closed = np.asarray(losses.gaussian_kl(jnp.asarray(mu, jnp.float32), jnp.asarray(logvar, jnp.float32),
                                           reduction="none"))
    n = 100_000
    sd = np.exp(0.5 * logvar)
    z = mu + sd * rng.normal(size=(n, 3, 4))  # (n, B, d) draws of q
    log_ratio = np.sum(norm.logpdf(z, mu, sd) - norm.logpdf(z), axis=-1)  # log q(z) − log p(z), (n, B)
    mc, se = log_ratio.mean(0), log_ratio.std(0) / np.sqrt(n)
    assert np.all(np.abs(closed - mc) < 3 * se), (closed, mc, se)
    assert float(losses.gaussian_kl(jnp.zeros((2, 3)), jnp.zeros((2, 3)))) == 0.0


def test_reparameterized_gradient_equals_the_analytic_one():
    # f(z) = zᵀAz + cᵀz:  E_q f = μᵀAμ + Σ_j A_jj σ_j² + cᵀμ
    # ∂/∂μ = (A + Aᵀ)μ + c,  ∂/∂logvar_j = A_jj σ_j²
    rng = np.random.default_rng(1)
    a, c = jnp.asarray(rng.normal(size=(3, 3)), jnp.float32), jnp.asarray(rng.normal(size=3), jnp.float32)
    mu, logvar = jnp.array([0.5, -1.0, 2.0]), jnp.array([0.3, -0.5, 0.0])
    f = lambda z: z @ a @ z + c @ z  # noqa: E731
    one = jax.grad(lambda m, lv, k: f(vae_lib.reparameterize(k, m, lv)), argnums=(0, 1))
    keys = jax.random.split(jax.random.key(0), 100_000)
    g_mu, g_lv = jax.jit(jax.vmap(one, in_axes=(None, None, 0)))(mu, logvar, keys)  # (n, 3) each
    exact_mu, exact_lv = (a + a.T) @ mu + c, jnp.diag(a) * jnp.exp(logvar)
    for g, exact in ((g_mu, exact_mu), (g_lv, exact_lv)):
        mean, se = g.mean(0), g.std(0) / np.sqrt(len(keys))
        assert np.all(np.abs(mean - exact) < 3 * se + 1e-6), (mean, exact, se)


def linear_gaussian(perturb: float):
    """A linear-Gaussian VAE: p(x|z) = N(Wz + b, σ²I), W (D, L) with orthogonal columns, so the
    true posterior N((I + WᵀW/σ²)⁻¹Wᵀ(x − b)/σ², (I + WᵀW/σ²)⁻¹) is diagonal and the encoder
    can equal it exactly (perturb = 0), or miss it (perturb > 0). Returns (model, params, x, log p(x))."""
    rng = np.random.default_rng(2)
    w = np.linalg.qr(rng.normal(size=(D, L)))[0] * np.array([2.0, 1.0])  # (D, L), WᵀW = diag(4, 1)
    b = rng.normal(size=D)
    cov_post = np.linalg.inv(np.eye(L) + w.T @ w / SIGMA**2)  # (L, L), diagonal
    enc_w = w @ cov_post / SIGMA**2  # (D, L): μ = (x − b) @ enc_w
    model = vae_lib.vae(jdl.nn.Dense(2 * L), jdl.nn.Dense(D), L)
    params = {"encoder": {"w": np.concatenate([enc_w + perturb * rng.normal(size=(D, L)), np.zeros((D, L))], 1),
                          "b": np.concatenate([-b @ enc_w, np.log(np.diag(cov_post)) + perturb])},
              "decoder": {"w": w.T, "b": b}}
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)
    x = rng.normal(size=(8, D)) + b
    log_px = multivariate_normal(b, w @ w.T + SIGMA**2 * np.eye(D)).logpdf(x)  # exact, (8,)
    return model, params, jnp.asarray(x, jnp.float32), log_px


def analytic_elbo(params, x):
    """E_q[log N(x; Wz + b, σ²I)] − KL in closed form for the linear-Gaussian VAE (numpy)."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
    code = np.asarray(x, np.float64) @ p["encoder"]["w"] + p["encoder"]["b"]
    mu, var = code[:, :L], np.exp(code[:, L:])
    w, b = p["decoder"]["w"].T, p["decoder"]["b"]  # (D, L), (D,)
    resid = np.sum((np.asarray(x, np.float64) - mu @ w.T - b) ** 2, 1) + var @ np.sum(w**2, 0)
    expected_ll = -0.5 * (D * np.log(2 * np.pi * SIGMA**2) + resid / SIGMA**2)
    kl = 0.5 * np.sum(mu**2 + var - 1 - np.log(var), 1)
    return expected_ll - kl


def test_elbo_equals_log_px_when_q_is_the_true_posterior():
    model, params, x, log_px = linear_gaussian(perturb=0.0)
    np.testing.assert_allclose(analytic_elbo(params, x), log_px, rtol=1e-6)
    # log p(x, z) − log q(z|x) = log p(x) for every z: one importance weight is the exact value
    for k in (1, 10):
        iw = vae_lib.iwae_bound(model, params, {"encoder": {}, "decoder": {}}, x, jax.random.key(1), k,
                                "gaussian", SIGMA)
        np.testing.assert_allclose(iw, log_px, rtol=1e-5, atol=1e-4)


def test_elbo_below_log_px_and_the_iw_bound_rises_toward_it():
    model, params, x, log_px = linear_gaussian(perturb=0.3)
    state = {"encoder": {}, "decoder": {}}
    exact_elbo = analytic_elbo(params, x)
    assert np.all(exact_elbo < log_px - 0.1)
    reps = 300
    xs = jnp.tile(x, (reps, 1))  # each row its own draws
    out, _ = jax.jit(model.apply, static_argnames="train")(params, state, xs, key=jax.random.key(0), train=True)
    one_sample = np.asarray(losses.elbo(out, xs, "gaussian", SIGMA)).reshape(reps, len(x))  # closed-form KL
    se = one_sample.std(0) / np.sqrt(reps)
    assert np.all(np.abs(one_sample.mean(0) - exact_elbo) < 4 * se), (one_sample.mean(0), exact_elbo, se)
    means = {}
    for k in (1, 8, 512):
        iw = vae_lib.iwae_bound(model, params, state, xs, jax.random.key(k), k, "gaussian", SIGMA)
        iw = np.asarray(iw).reshape(reps, len(x))
        means[k] = iw.mean(0)
        if k == 1:  # L_1 is an unbiased estimate of the ELBO
            se = iw.std(0) / np.sqrt(reps)
            assert np.all(np.abs(means[1] - exact_elbo) < 4 * se), (means[1], exact_elbo, se)
    gaps = {k: log_px - m for k, m in means.items()}
    assert np.all(gaps[1] > gaps[8]) and np.all(gaps[8] > gaps[512])
    # at K = 512 the bound has (within the Monte-Carlo noise) reached log p(x) from below
    assert np.all(gaps[512] > -0.01) and np.all(gaps[512] < 0.1 * gaps[1])


def test_vae_loss_matches_pytorch():
    rng = np.random.default_rng(3)
    logits, x = rng.normal(size=(4, 3, 3, 1)), rng.uniform(size=(4, 3, 3, 1))
    mu, logvar = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    out = vae_lib.VAEOutput(*(jnp.asarray(a, jnp.float32) for a in (logits, mu, logvar, mu)))
    t = lambda a: torch.tensor(a)  # noqa: E731
    kl = torch.distributions.kl_divergence(torch.distributions.Normal(t(mu), torch.exp(0.5 * t(logvar))),
                                           torch.distributions.Normal(0.0, 1.0)).sum(1)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(t(logits), t(x), reduction="none").sum((1, 2, 3))
    for beta in (1.0, 4.0):
        ours = losses.vae_loss("bernoulli", beta=beta)(out, jnp.asarray(x, jnp.float32), reduction="none")
        np.testing.assert_allclose(ours, (bce + beta * kl).numpy(), rtol=1e-5)
    gauss = torch.distributions.Normal(t(logits), 0.3).log_prob(t(x)).sum((1, 2, 3)) - kl
    np.testing.assert_allclose(losses.elbo(out, jnp.asarray(x, jnp.float32), "gaussian", 0.3), gauss.numpy(),
                               rtol=1e-5)
    np.testing.assert_allclose(losses.vae_loss("gaussian", sigma=0.3)(out, jnp.asarray(x, jnp.float32)),
                               -gauss.numpy().mean(), rtol=1e-5)


@pytest.fixture(scope="module")
def trained():
    x, _ = jdl.data.load("digits", "train")
    model = vae_lib.dense_vae(x.shape[1:], hidden=(64,), latent=2)
    result = jdl.train.fit(model, losses.vae_loss(), jdl.optim.adam(3e-3), (x, x), epochs=3, batch_size=64,
                           progress=False, tensorboard=False)
    return model, result, x


def test_vae_trains_with_fit_and_its_bounds_are_ordered(trained):
    model, result, x = trained
    losses_ = [h["train_loss"] for h in result.history]
    assert losses_[-1] < losses_[0] - 2.0
    ts = result.train_state
    elbo1 = vae_lib.iwae_bound(model, ts.params, ts.state, x[:200], jax.random.key(0), 1)
    elbo50 = vae_lib.iwae_bound(model, ts.params, ts.state, x[:200], jax.random.key(0), 50)
    assert float(elbo50.mean()) > float(elbo1.mean())
    assert -float(elbo1.mean()) < 50.0  # nats per 64-pixel image; an untrained decoder is ≈ 64·log 2 ≈ 44 + KL
    s = vae_lib.sample(model, ts.params, ts.state, jax.random.key(0), 6, 2)
    grid = vae_lib.traversal(model, ts.params, ts.state, jnp.linspace(-2, 2, 5))
    assert s.shape == (6, 8, 8, 1) and grid.shape == (5, 5, 8, 8, 1)
    # the grid's centre is the decoder at z = 0
    np.testing.assert_allclose(grid[2, 2], jdl.models.autoencoder.decode(model, ts.params, ts.state,
                                                                        jnp.zeros((1, 2)))[0], atol=1e-6)


def test_eval_mode_decodes_the_mean_and_training_draws(trained):
    model, result, x = trained
    ts = result.train_state
    apply = jax.jit(model.apply, static_argnames="train")
    out, _ = apply(ts.params, ts.state, x[:4])
    np.testing.assert_array_equal(out.z, out.mu)
    drawn, _ = apply(ts.params, ts.state, x[:4], key=jax.random.key(1), train=True)
    np.testing.assert_array_equal(drawn.mu, out.mu)
    assert not np.allclose(drawn.z, drawn.mu)


def test_conv_vae_shapes():
    model = vae_lib.conv_vae((8, 8, 1), channels=(8, 16), latent=3)
    x = jax.ShapeDtypeStruct((2, 8, 8, 1), jnp.float32)
    params, state = jax.eval_shape(model.init, jax.random.key(0), x)
    assert params["decoder"]["3_conv_transpose2d"]["w"].shape == (4, 4, 16, 8)  # 2×2×16 → 4×4×8
    out = jax.eval_shape(lambda p, s, x: model.apply(p, s, x, key=jax.random.key(0), train=True)[0], params, state, x)
    assert out.decoded.shape == (2, 8, 8, 1) and out.mu.shape == out.z.shape == (2, 3)


def test_errors():
    model = vae_lib.vae(jdl.nn.Dense(3), jdl.nn.Dense(4), 2)
    with pytest.raises(ValueError, match=r"vae: the encoder must return \(B, 2·latent\) = \(B, 4\)"):
        model.init(jax.random.key(0), jnp.ones((1, 4)))
    ok = vae_lib.vae(jdl.nn.Dense(4), jdl.nn.Dense(4), 2)
    params, state = ok.init(jax.random.key(0), jnp.ones((1, 4)))
    with pytest.raises(ValueError, match="vae is stochastic and needs a random key when train=True"):
        ok.apply(params, state, jnp.ones((1, 4)), train=True)
    with pytest.raises(ValueError, match=r"vae_loss: likelihood must be one of \('bernoulli', 'gaussian'\)"):
        losses.vae_loss("poisson")
    with pytest.raises(ValueError, match=r"gaussian_kl: predictions have shape \(2, 3\) but targets"):
        losses.gaussian_kl(jnp.ones((2, 3)), jnp.ones((2, 2)))
    with pytest.raises(ValueError, match="iwae_bound: k must be a positive int, got 0"):
        vae_lib.iwae_bound(ok, params, state, jnp.ones((1, 4)), jax.random.key(0), 0)


def test_vae_objective_splits_the_loss_into_its_terms(trained):
    model, result, x = trained
    ts = result.train_state
    key = jax.random.key(5)
    xb = jnp.asarray(x[:32])
    loss, (_, metrics) = vae_lib.vae_objective(model, beta=2.0)(ts.params, ts.state, xb, key)
    out, _ = model.apply(ts.params, ts.state, xb, key=key, train=True)  # the same draw of z
    np.testing.assert_allclose(loss, losses.vae_loss(beta=2.0)(out, xb), rtol=1e-6)
    np.testing.assert_allclose(loss, metrics["reconstruction"] + 2.0 * metrics["kl"], rtol=1e-6)
    step = jdl.train.make_step(vae_lib.vae_objective(model), jdl.optim.adam(1e-3), donate=False)
    _, m = step(ts, xb)
    assert set(m) >= {"loss", "reconstruction", "kl"}
