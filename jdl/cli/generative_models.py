"""The three generative models of ``jdl train`` (``jdl.cli.train_generative``), each as a
``Generative``: its first ``TrainState``, its step on batches ``(x, y)`` (labels unused), its
per-split metrics as masked sums for ``jdl.train.evaluate``, and its sampler at fixed noise.
Images x (B, H, W, C) have pixels in [0, 1]."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jdl.cli.train_generative import Generative, Settings, split_measure


def _nonfinite(config) -> str | None:
    return None if config.on_nonfinite == "ignore" else config.on_nonfinite


def _masked(mask: jax.Array, **per_example: jax.Array) -> dict:
    """{name: Σ_i mask_i·v_i} and the count Σ_i mask_i: sums that ``evaluate`` turns into means."""
    return {**{k: jnp.sum(v * mask) for k, v in per_example.items()}, "count": jnp.sum(mask)}


def vae_parts(config, settings: Settings, shape: tuple, optimizer) -> Generative:
    """``dense_vae`` with a Bernoulli decoder; train loss −ELBO = reconstruction + KL (per example,
    one z), measured on a split with z drawn by a fixed key; samples σ(decoder(z)), z ~ N(0, I)."""
    from jdl import losses
    from jdl.models import vae as vae_lib
    from jdl.models.autoencoder import decode
    from jdl.train import init_train_state, make_step

    model = vae_lib.dense_vae(shape, config.hidden, settings.latent)
    ts = init_train_state(model, optimizer, jax.ShapeDtypeStruct((1, *shape), jnp.float32), config.seed)
    objective = vae_lib.vae_objective(model)
    step = make_step(lambda p, s, batch, k: objective(p, s, batch[0], k), optimizer, on_nonfinite=_nonfinite(config))

    @jax.jit
    def eval_step(params, state, x, y, mask):
        out, _ = model.apply(params, state, x, key=jax.random.key(0))  # one z per example
        recon = -losses.decoder_log_likelihood(out.decoded, x)  # (B,)
        kl = losses.gaussian_kl(out.mu, out.logvar, reduction="none")  # (B,)
        return _masked(mask, loss=recon + kl, elbo=-(recon + kl), reconstruction=recon, kl=kl)

    z = jax.random.normal(jax.random.key(config.seed + 1), (settings.n_grid, settings.latent))
    sample = jax.jit(lambda params, state: jax.nn.sigmoid(decode(model, params, state, z)))
    return Generative(ts, step, split_measure(eval_step, settings.eval_batch_size),
                      lambda ts: np.asarray(sample(ts.params, ts.state)))


def gan_parts(config, settings: Settings, shape: tuple, optimizer) -> Generative:
    """MLP generator and discriminator, the non-saturating loss, one optimizer each
    (``make_gan_step``), held in one ``TrainState`` whose params, state and optimizer state are
    ``{'generator': …, 'discriminator': …}``; measured: mean D(x) and D(G(z)) at fixed z."""
    from jdl.models import gan
    from jdl.train import TrainState, init_train_state

    G, D = gan.mlp_generator(shape, config.hidden), gan.mlp_discriminator(config.hidden)
    g = init_train_state(G, optimizer, jax.ShapeDtypeStruct((1, settings.z_dim), jnp.float32), config.seed)
    d = init_train_state(D, optimizer, jax.ShapeDtypeStruct((1, *shape), jnp.float32), config.seed + 1)
    pair = lambda g, d, field: {"generator": getattr(g, field), "discriminator": getattr(d, field)}  # noqa: E731
    ts = TrainState(pair(g, d, "params"), pair(g, d, "state"), pair(g, d, "opt_state"), g.step, g.key)
    gan_step = gan.make_gan_step(G, D, optimizer, optimizer, z_dim=settings.z_dim, jit=False)

    def step(ts: TrainState, batch):
        half = lambda name: TrainState(ts.params[name], ts.state[name], ts.opt_state[name], ts.step, ts.key)  # noqa: E731
        g, d, metrics = gan_step(half("generator"), half("discriminator"), batch[0])
        return TrainState(pair(g, d, "params"), pair(g, d, "state"), pair(g, d, "opt_state"), g.step, ts.key), metrics

    @jax.jit
    def eval_step(params, state, x, y, mask):
        z = jax.random.normal(jax.random.key(0), (x.shape[0], settings.z_dim), x.dtype)
        fake, _ = G.apply(params["generator"], state["generator"], z)
        d = lambda v: jax.nn.sigmoid(D.apply(params["discriminator"], state["discriminator"], v)[0][:, 0])  # noqa: E731
        return _masked(mask, d_real=d(x), d_fake=d(fake))

    z = jax.random.normal(jax.random.key(config.seed + 1), (settings.n_grid, settings.z_dim))
    sample = jax.jit(lambda params, state: G.apply(params["generator"], state["generator"], z)[0])
    return Generative(ts, jax.jit(step, donate_argnums=(0,)), split_measure(eval_step, settings.eval_batch_size),
                      lambda ts: np.asarray(sample(ts.params, ts.state)))


def ddpm_parts(config, settings: Settings, shape: tuple, optimizer) -> Generative:
    """``UNet`` (channels ``--hidden``) trained with the DDPM loss on x_0 = 2x − 1 ∈ [−1, 1];
    measured: the loss at a fixed draw of (t, ε) per row; samples by DDIM with x̂_0 clipped."""
    from jdl.models import diffusion
    from jdl.models.denoisers import eps_fn
    from jdl.models.unet import UNet
    from jdl.train import init_train_state, make_step

    T = settings.T
    s = diffusion.cosine_schedule(T) if settings.schedule == "cosine" else diffusion.linear_schedule(T, 1e-4, 0.1)
    model = UNet(T, config.hidden)
    ts = init_train_state(model, optimizer, jax.ShapeDtypeStruct((1, *shape), jnp.float32), config.seed)
    step = make_step(lambda p, st, batch, k: (diffusion.ddpm_loss(eps_fn(model, p, st), s, 2 * batch[0] - 1, k), (st, {})),
                     optimizer, on_nonfinite=_nonfinite(config))

    @jax.jit
    def eval_step(params, state, x, y, mask):
        kt, ke = jax.random.split(jax.random.key(0))
        t = jax.random.randint(kt, x.shape[:1], 1, T + 1)
        eps = jax.random.normal(ke, x.shape, x.dtype)
        eps_hat = eps_fn(model, params, state)(diffusion.q_sample(s, 2 * x - 1, t, eps), t)
        return _masked(mask, loss=jnp.mean((eps - eps_hat) ** 2, axis=(1, 2, 3)))

    grid_shape, steps = (settings.n_grid, *shape), min(settings.ddim_steps, T)
    sample = jax.jit(lambda params, state: diffusion.ddim_sample(
        eps_fn(model, params, state), s, grid_shape, jax.random.key(config.seed + 1), steps=steps, clip_x0=(-1.0, 1.0)))
    return Generative(ts, step, split_measure(eval_step, settings.eval_batch_size),
                      lambda ts: np.asarray(sample(ts.params, ts.state)) * 0.5 + 0.5)
