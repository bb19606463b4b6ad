"""Losses of latent-variable models (the VAE chapter): the Gaussian KL, decoder likelihoods and
the ELBO. Re-exported by ``jdl.losses``."""

from __future__ import annotations


import jax
import jax.numpy as jnp

from jdl.losses.core import _reduce, _same_shape, sigmoid_binary_cross_entropy


def _per_example_sum(values: jax.Array) -> jax.Array:
    """Σ over every axis but the first: (B, ...) → (B,)."""
    return jnp.sum(values.reshape(values.shape[0], -1), axis=1)


def gaussian_kl(mu: jax.Array, logvar: jax.Array, reduction: str = "mean") -> jax.Array:
    """KL(q ‖ p) of q = N(μ, diag σ²) from the standard normal p = N(0, I), in closed form:

        KL = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²),   σ_j² = exp(logvar_j)

    summed over each example's dimensions j, then reduced over the batch (the VAE's
    regularizer; zero exactly when μ = 0 and σ = 1).

    Shapes: mu, logvar (B, ...) of one shape → (B,) with 'none', else a scalar.
    """
    _same_shape("gaussian_kl", mu, logvar)
    return _reduce(_per_example_sum(0.5 * (jnp.square(mu) + jnp.exp(logvar) - 1.0 - logvar)), reduction)


def bernoulli_log_likelihood(logits: jax.Array, x: jax.Array) -> jax.Array:
    """log p(x | logits) = Σ_j [x_j log σ(l_j) + (1 − x_j) log(1 − σ(l_j))], per example: the
    negative of ``sigmoid_binary_cross_entropy`` summed over the features (x in [0, 1]; for grey
    values it is the usual cross-entropy, not a normalized density of continuous x).

    Shapes: logits, x (B, ...) of one shape → (B,).
    """
    _same_shape("bernoulli_log_likelihood", logits, x)
    return -_per_example_sum(sigmoid_binary_cross_entropy(logits, x, reduction="none"))


def gaussian_log_likelihood(mean: jax.Array, x: jax.Array, logvar: jax.Array | float = 0.0) -> jax.Array:
    """log N(x; m, diag σ²) = −½ Σ_j [(x_j − m_j)²/σ_j² + log σ_j² + log 2π], per example.

    Shapes: mean, x (B, ...) of one shape; logvar a scalar or of their shape → (B,).
    """
    _same_shape("gaussian_log_likelihood", mean, x)
    logvar = jnp.asarray(logvar, mean.dtype)
    if logvar.ndim and logvar.shape != mean.shape:
        raise ValueError(f"gaussian_log_likelihood: logvar must be a scalar or of the mean's shape "
                         f"{mean.shape}, got {logvar.shape}")
    sq = jnp.square(x - mean) * jnp.exp(-logvar)
    return -0.5 * _per_example_sum(sq + logvar + jnp.log(2 * jnp.pi))


LIKELIHOODS = ("bernoulli", "gaussian")


def decoder_log_likelihood(decoded: jax.Array, x: jax.Array, likelihood: str = "bernoulli",
                           sigma: float = 1.0) -> jax.Array:
    """log p(x | z) given the decoder's output: Bernoulli on logits, or Gaussian with mean
    ``decoded`` and a fixed standard deviation ``sigma``. Shapes: (B, ...) → (B,)."""
    if likelihood == "bernoulli":
        return bernoulli_log_likelihood(decoded, x)
    if likelihood == "gaussian":
        if not sigma > 0:
            raise ValueError(f"decoder_log_likelihood: sigma must be > 0, got {sigma!r}")
        return gaussian_log_likelihood(decoded, x, 2.0 * jnp.log(jnp.asarray(sigma, decoded.dtype)))
    raise ValueError(f"decoder_log_likelihood: likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")


def elbo(out, x: jax.Array, likelihood: str = "bernoulli", sigma: float = 1.0, beta: float = 1.0) -> jax.Array:
    """The evidence lower bound of each example, from one sample z ~ q(z | x):

        ELBO(x) = E_q[log p(x | z)] − β·KL(q(z | x) ‖ p(z)) ≤ log p(x)   (for β = 1)

    with E_q estimated by the decoder's output at the z the VAE drew and the KL in closed form
    (``gaussian_kl``). β > 1 is the β-VAE (Higgins et al., 2017): a stronger pull to the prior,
    a bound no more.

    Shapes: ``out`` a ``VAEOutput`` (``decoded`` (B, ...), ``mu``, ``logvar`` (B, d_z)), x (B, ...) → (B,).
    """
    log_px_z = decoder_log_likelihood(out.decoded, x, likelihood, sigma)
    return log_px_z - beta * gaussian_kl(out.mu, out.logvar, reduction="none")


def vae_loss(likelihood: str = "bernoulli", *, beta: float = 1.0, sigma: float = 1.0):
    """The VAE's loss ℓ(out, x) = −ELBO_β(x), as a ``loss(out, x, reduction='mean')`` for
    ``jdl.train.fit(vae_model, vae_loss(), optimizer, (x, x))``: the model draws z with the
    step's key (the reparameterization), the loss reads its extra outputs (μ, log σ²).

    Args:
      likelihood: 'bernoulli' (decoder logits) or 'gaussian' (decoder means, std ``sigma``).
      beta: the KL weight; 1 is the VAE, > 1 the β-VAE.
      sigma: the Gaussian decoder's fixed standard deviation.
    """
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"vae_loss: likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
    if not beta >= 0:
        raise ValueError(f"vae_loss: beta must be >= 0, got {beta!r}")

    def loss(out, x: jax.Array, reduction: str = "mean") -> jax.Array:
        return _reduce(-elbo(out, x, likelihood, sigma, beta), reduction)

    return loss
