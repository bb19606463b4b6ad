"""Generative adversarial networks (Goodfellow et al. 2014): a generator G maps noise z to
samples, a discriminator D scores samples as real (D → 1) or generated (D → 0), and the two
play the minimax game

    min_G max_D  E_x[log D(x)] + E_z[log(1 − D(G(z)))].

D(·) = σ(logit), so every loss below takes the discriminator's logits l and is written with
softplus(u) = log(1 + eᵘ): −log D = softplus(−l), −log(1 − D) = softplus(l).

Why the generator is usually trained on −log D(G(z)) instead of log(1 − D(G(z))) (the
generative-models part of the course; Goodfellow et al. §3): early in training G's samples are
poor, D rejects them confidently, D(G(z)) ≈ 0, and there the minimax loss is flat —
∂ log(1 − D)/∂l = −D → 0 — so G gets no gradient exactly when it most needs one. The
non-saturating loss has the same fixed point (both push D(G(z)) up) but ∂(−log D)/∂l = −(1 − D)
→ −1: the gradient is largest where G is worst. Their ratio is (1 − D)/D.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

from jdl.core import Module
from jdl.nn.activations import leaky_relu, sigmoid
from jdl.nn.combinators import serial
from jdl.nn.conv import Conv2D
from jdl.nn.conv_transpose import ConvTranspose2D
from jdl.nn.linear import Dense, Flatten
from jdl.optim.base import GradientTransformation
from jdl.train.state import TrainState
from jdl.train.step import make_step


def _lrelu(z: jax.Array) -> jax.Array:
    return leaky_relu(z, 0.2)  # DCGAN's slope


def mlp_generator(image_shape: Sequence[int] = (8, 8, 1), hidden: Sequence[int] = (256, 256)) -> Module:
    """G(z) = σ(MLP(z)) reshaped to an image in [0, 1]: Dense → leaky ReLU(0.2) per hidden layer.

    Shapes: z (B, d_z) → (B, *image_shape).
    """
    d = 1
    for n in image_shape:
        d *= n
    layers = [m for h in hidden for m in (Dense(h), _lrelu)]
    return serial(*layers, Dense(d), sigmoid, lambda x: x.reshape(x.shape[0], *image_shape))


def mlp_discriminator(hidden: Sequence[int] = (256, 256)) -> Module:
    """D's logit l(x) by an MLP on the flattened image (leaky ReLU 0.2); D(x) = σ(l).

    Shapes: x (B, ...) → (B, 1).
    """
    return serial(Flatten(), *[m for h in hidden for m in (Dense(h), _lrelu)], Dense(1))


def dcgan_generator(channels: int = 64) -> Module:
    """A DCGAN-style generator for 8×8 images (Radford et al. 2016, without BatchNorm): a Dense
    projection to a 2×2 map, then stride-2 transposed convolutions that double the side:

        z → Dense(2·2·2c) → (B, 2, 2, 2c) → ConvT(c, 4, s2, p1) → (B, 4, 4, c) → ConvT(1, 4, s2, p1) → σ

    Shapes: z (B, d_z) → (B, 8, 8, 1) in [0, 1].
    """
    c = channels
    return serial(Dense(4 * 2 * c), _lrelu, lambda x: x.reshape(x.shape[0], 2, 2, 2 * c),  # (B, 2, 2, 2c)
                  ConvTranspose2D(c, 4, stride=2, padding=1), _lrelu,                   # (B, 4, 4, c)
                  ConvTranspose2D(1, 4, stride=2, padding=1), sigmoid)                  # (B, 8, 8, 1)


def dcgan_discriminator(channels: int = 64) -> Module:
    """The mirror image: stride-2 convolutions halve the side, leaky ReLU(0.2), a Dense logit.

        x (B, 8, 8, 1) → Conv(c, 4, s2) → (B, 4, 4, c) → Conv(2c, 4, s2) → (B, 2, 2, 2c) → Dense(1)

    Shapes: x (B, 8, 8, 1) → (B, 1).
    """
    c = channels
    return serial(Conv2D(c, 4, stride=2), _lrelu, Conv2D(2 * c, 4, stride=2), _lrelu, Flatten(), Dense(1))


def discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """D's loss, the negated value of the game: −E[log D(x)] − E[log(1 − D(G(z)))]
    = mean softplus(−l_real) + mean softplus(l_fake) (binary cross-entropy, real = 1, fake = 0).

    Shapes: real_logits (B, 1), fake_logits (B', 1) → a scalar.
    """
    return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))


def generator_loss_minimax(fake_logits: jax.Array) -> jax.Array:
    """The game's own generator loss, minimized by G: E[log(1 − D(G(z)))] = −mean softplus(l).
    Its gradient ∂/∂l = −σ(l) = −D(G(z)) vanishes as D(G(z)) → 0 (it saturates).

    Shapes: fake_logits (B, 1) → a scalar.
    """
    return -jnp.mean(jax.nn.softplus(fake_logits))


def generator_loss_non_saturating(fake_logits: jax.Array) -> jax.Array:
    """The non-saturating generator loss: −E[log D(G(z))] = mean softplus(−l). Its gradient
    ∂/∂l = −(1 − D(G(z))) tends to −1 as D(G(z)) → 0.

    Shapes: fake_logits (B, 1) → a scalar.
    """
    return jnp.mean(jax.nn.softplus(-fake_logits))


GENERATOR_LOSSES: dict[str, Callable[[jax.Array], jax.Array]] = {
    "minimax": generator_loss_minimax, "non_saturating": generator_loss_non_saturating}


def make_gan_step(generator: Module, discriminator: Module, g_optimizer: GradientTransformation,
                  d_optimizer: GradientTransformation, *, z_dim: int, generator_loss: str = "non_saturating",
                  jit: bool = True) -> Callable[[TrainState, TrainState, Any], tuple[TrainState, TrainState, dict]]:
    """``step(g_ts, d_ts, real) -> (g_ts, d_ts, metrics)``: one update of each model with its
    own optimizer, in one jitted function (built from two ``jdl.train.make_step`` steps):

        z ~ N(0, I) (B, z_dim), drawn from fold_in(g_ts.key, g_ts.step)
        D:  θ_D ← θ_D − update(∇_θD [−log D(x) − log(1 − D(G(z)))])      (G's samples held fixed)
        G:  θ_G ← θ_G − update(∇_θG L_G(D'(G(z))))                      (with D' the updated D)

    L_G is ``generator_loss`` ('non_saturating': −log D, or 'minimax': log(1 − D)). Metrics:
    ``d_loss``, ``g_loss``, ``d_real`` = mean D(x), ``d_fake`` = mean D(G(z)) before D's update.

    Args:
      generator, discriminator: the two models (``mlp_generator``/``dcgan_generator``, …).
      g_optimizer, d_optimizer: their optimizers. z_dim: the noise size. jit: jit the step.
    """
    if generator_loss not in GENERATOR_LOSSES:
        raise ValueError(f"make_gan_step: generator_loss must be one of {sorted(GENERATOR_LOSSES)}, "
                         f"got {generator_loss!r}")
    g_loss_of = GENERATOR_LOSSES[generator_loss]

    def d_loss(dp, ds, batch, key):
        real, ds = discriminator.apply(dp, ds, batch["real"], train=True)
        fake, ds = discriminator.apply(dp, ds, batch["fake"], train=True)
        return discriminator_loss(real, fake), (ds, {"d_real": jnp.mean(sigmoid(real)),
                                                     "d_fake": jnp.mean(sigmoid(fake))})

    def g_loss(gp, gs, batch, key):
        x, gs = generator.apply(gp, gs, batch["z"], train=True)
        fake, _ = discriminator.apply(batch["d_params"], batch["d_state"], x, train=True)
        return g_loss_of(fake), (gs, {})

    d_step, g_step = make_step(d_loss, d_optimizer, jit=False), make_step(g_loss, g_optimizer, jit=False)

    def step(g_ts: TrainState, d_ts: TrainState, real: Any):
        z = jax.random.normal(jax.random.fold_in(g_ts.key, g_ts.step), (real.shape[0], z_dim), real.dtype)
        fake, _ = generator.apply(g_ts.params, g_ts.state, z, train=True)
        d_ts, d_m = d_step(d_ts, {"real": real, "fake": jax.lax.stop_gradient(fake)})
        g_ts, g_m = g_step(g_ts, {"z": z, "d_params": d_ts.params, "d_state": d_ts.state})
        return g_ts, d_ts, {"d_loss": d_m["loss"], "g_loss": g_m["loss"], "d_real": d_m["d_real"],
                            "d_fake": d_m["d_fake"]}

    return jax.jit(step, donate_argnums=(0, 1)) if jit else step
