"""make_step on any loss function: one step is one optimizer update of ∇J (by hand with
jax.grad), gradient accumulation equals one step on the whole batch, and a GAN and a VAE are
written from the public pieces in a few lines each and train."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jdl
from jdl.losses import sigmoid_binary_cross_entropy, softmax_cross_entropy
from jdl.nn import Dense, relu, serial
from jdl.train import TrainState, init_train_state, make_step, supervised
from tests.helpers import draw_normal


def _data(n=32, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(np.float32), (np.arange(n) % k).astype(np.int32)


@pytest.mark.parametrize("k", [2, 4])
def test_accumulated_step_equals_one_step_on_the_whole_batch(k):
    model, opt = jdl.models.mlp([16, 3]), jdl.optim.adam(1e-2)
    x, y = _data()
    ts = init_train_state(model, opt, x)
    whole = make_step(supervised(model, softmax_cross_entropy), opt, donate=False)(ts, (x, y))
    micro = make_step(supervised(model, softmax_cross_entropy), opt, donate=False, accumulate_steps=k)(ts, (x, y))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6), whole[0].params, micro[0].params)
    np.testing.assert_allclose(whole[1]["loss"], micro[1]["loss"], rtol=1e-6)
    np.testing.assert_allclose(whole[1]["accuracy"], micro[1]["accuracy"], rtol=1e-6)
    assert not np.allclose(whole[0].params["1_dense"]["w"], ts.params["1_dense"]["w"])  # it moved


def test_accumulation_refuses_an_indivisible_batch():
    model, opt = jdl.models.mlp([3]), jdl.optim.sgd(0.1)
    x, y = _data(n=10)
    step = make_step(supervised(model, softmax_cross_entropy), opt, accumulate_steps=4)
    with pytest.raises(ValueError, match="accumulate_steps=4 needs every batch leaf to have a leading axis divisible by 4"):
        step(init_train_state(model, opt, x), (x, y))


def test_fit_with_accumulation_follows_fit_without():
    data = _data(n=64)
    runs = [jdl.train.fit(jdl.models.mlp([8, 3]), softmax_cross_entropy, jdl.optim.sgd(0.1), data, epochs=2,
                          batch_size=16, accumulate_steps=k, progress=False) for k in (1, 4)]
    for a, b in zip(runs[0].history, runs[1].history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
    with pytest.raises(ValueError, match="accumulate_steps=3 must divide batch_size=16"):
        jdl.train.fit(jdl.models.mlp([3]), softmax_cross_entropy, jdl.optim.sgd(0.1), data, batch_size=16,
                      accumulate_steps=3, progress=False)


def _bce(logits, target):
    return sigmoid_binary_cross_entropy(logits[:, 0], target)


def test_a_two_model_gan_from_the_public_pieces():
    """1-D GAN: real x ~ N(3, 0.5²); G(z) = a·z + b learns to put its samples there. Two
    optimizers, one jitted step; the non-saturating generator loss −log D(G(z))."""
    G, D = Dense(1), serial(Dense(16), relu, Dense(1))
    z0 = jnp.zeros((64, 1))
    g_ts = init_train_state(G, optax.adam(2e-2), z0, seed=1)
    d_ts = init_train_state(D, optax.adam(2e-2), z0, seed=2)

    def d_loss(dp, ds, batch, key):  # batch: real and generated samples
        real, _ = D.apply(dp, ds, batch["real"])
        fake, _ = D.apply(dp, ds, batch["fake"])
        return _bce(real, jnp.ones(len(real))) + _bce(fake, jnp.zeros(len(fake))), (ds, {})

    def g_loss(gp, gs, batch, key):  # batch: noise and the discriminator's current params
        fake, _ = D.apply(batch["d_params"], {}, G.apply(gp, gs, batch["z"])[0])
        return _bce(fake, jnp.ones(len(fake))), (gs, {})

    d_step, g_step = make_step(d_loss, optax.adam(2e-2), jit=False), make_step(g_loss, optax.adam(2e-2), jit=False)

    @jax.jit
    def gan_step(d_ts, g_ts, real, key):
        z = draw_normal(key, real.shape)
        d_ts, d_m = d_step(d_ts, {"real": real, "fake": G.apply(g_ts.params, g_ts.state, z)[0]})
        g_ts, g_m = g_step(g_ts, {"z": z, "d_params": d_ts.params})
        return d_ts, g_ts, d_m["loss"], g_m["loss"]

    key = jax.random.key(0)
    for t in range(300):
        real = 3.0 + 0.5 * draw_normal(jax.random.fold_in(key, 2 * t), (64, 1))
        d_ts, g_ts, d_l, g_l = gan_step(d_ts, g_ts, real, jax.random.fold_in(key, 2 * t + 1))
    samples = G.apply(g_ts.params, g_ts.state, draw_normal(key, (2000, 1)))[0]
    assert abs(float(samples.mean()) - 3.0) < 0.5  # from ~0 at init
    assert int(d_ts.step) == int(g_ts.step) == 300 and np.isfinite(float(d_l) + float(g_l))


def test_a_vae_loss_with_a_key_and_extra_outputs():
    """VAE: encoder → (μ, log σ²), z = μ + σ·ε with ε from the step's key, Bernoulli decoder;
    −ELBO = BCE(x, decoder(z)) + KL(N(μ, σ²) ‖ N(0, 1)), KL and reconstruction as metrics. One
    step equals a hand-written SGD step with the same key; the loss falls."""
    enc, dec = Dense(4), serial(Dense(16), relu, Dense(8))
    x = (np.random.default_rng(0).random((64, 8)) > 0.5).astype(np.float32)
    p_enc, _ = enc.init(jax.random.key(1), x)
    p_dec, _ = dec.init(jax.random.key(2), jnp.zeros((64, 2)))

    def neg_elbo(params, state, batch, key):
        h, _ = enc.apply(params["enc"], {}, batch)
        mu, logvar = h[:, :2], h[:, 2:]
        z = mu + jnp.exp(0.5 * logvar) * draw_normal(key, mu.shape)
        logits, _ = dec.apply(params["dec"], {}, z)
        recon = sigmoid_binary_cross_entropy(logits, batch, reduction="none").sum(-1).mean()
        kl = (0.5 * (jnp.exp(logvar) + mu ** 2 - 1 - logvar).sum(-1)).mean()
        return recon + kl, (state, {"kl": kl, "reconstruction": recon})

    params, opt = {"enc": p_enc, "dec": p_dec}, jdl.optim.sgd(0.05)
    ts = TrainState(params, {}, opt.init(params), jnp.zeros([], jnp.int32), jax.random.key(3))
    step = make_step(neg_elbo, opt, donate=False)
    grads = jax.jit(jax.grad(lambda p: neg_elbo(p, {}, x, jax.random.fold_in(ts.key, 0))[0]))(params)  # op by op: slow
    new, metrics = step(ts, x)
    jax.tree.map(lambda a, p, g: np.testing.assert_allclose(a, p - 0.05 * g, rtol=1e-5, atol=1e-7), new.params, params, grads)
    assert metrics["loss"] == pytest.approx(float(metrics["kl"] + metrics["reconstruction"]), rel=1e-6)
    first = float(metrics["loss"])
    for _ in range(200):
        new, metrics = step(new, x)
    assert float(metrics["loss"]) < first - 0.5


def test_the_step_updates_params_and_optimizer_state_in_place():
    """Donation end to end: every param and optimizer-state array of the train state is an input
    that the compiled step aliases to an output (XLA's input_output_alias), so an update writes
    into the buffers it reads instead of allocating new ones."""
    import re

    model, opt = jdl.models.mlp([16, 3]), jdl.optim.adam(1e-2)
    x, y = _data()
    ts = init_train_state(model, opt, x)
    hlo = make_step(supervised(model, softmax_cross_entropy), opt).lower(ts, (x, y)).compile().as_text()
    aliased = {int(p) for p in re.findall(r"\{[0-9]*\}: \(([0-9]+), \{\}", hlo.split("\n", 1)[0])}
    n_params, n_state = len(jax.tree.leaves(ts.params)), len(jax.tree.leaves(ts.state))
    n_opt = len(jax.tree.leaves(ts.opt_state))
    params_idx = set(range(n_params))
    opt_idx = set(range(n_params + n_state, n_params + n_state + n_opt))
    assert n_params == 4 and n_opt == 9  # w, b of two layers; count + m and v of each
    assert params_idx <= aliased and opt_idx <= aliased, (sorted(aliased), n_params, n_opt)
