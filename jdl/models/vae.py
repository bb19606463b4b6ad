"""The variational autoencoder (Kingma & Welling, 2014): a latent-variable model

    p(z) = N(0, I),   p(x | z) = decoder(z)   (Bernoulli logits or Gaussian means)

trained by maximizing the evidence lower bound with an encoder q(z | x) = N(μ(x), diag σ²(x)):

    log p(x) ≥ ELBO(x) = E_q[log p(x | z)] − KL(q(z | x) ‖ p(z)).

The expectation is estimated with one sample drawn by the reparameterization z = μ + σ⊙ε,
ε ~ N(0, I), so gradients flow through μ and σ; the KL is in closed form
(``jdl.losses.gaussian_kl``). Train with ``fit(model, jdl.losses.vae_loss(), opt, (x, x))``;
``iwae_bound`` estimates log p(x) itself more tightly with K samples (Burda et al., 2016).
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from jdl import losses
from jdl.core import Module, Params, PRNGKey, State, check_key, leaf, shape_struct
from jdl.models.autoencoder import conv_decoder, conv_encoder, decode, dense_decoder, dense_encoder


class VAEOutput(NamedTuple):
    """What a ``vae`` returns: ``decoded`` (B, ...) the decoder's output at ``z`` (Bernoulli
    logits or Gaussian means), ``mu`` and ``logvar`` (B, d_z) the encoder's q(z | x), and the
    code ``z`` (B, d_z) it decoded."""

    decoded: jax.Array
    mu: jax.Array
    logvar: jax.Array
    z: jax.Array


def reparameterize(key: PRNGKey, mu: jax.Array, logvar: jax.Array) -> jax.Array:
    """z = μ + σ⊙ε with σ = exp(½ logvar) and ε ~ N(0, I): a sample of N(μ, diag σ²) that is a
    differentiable function of (μ, logvar), so ∇ E_q[f(z)] = E_ε[∇ f(μ + σ⊙ε)].

    Shapes: mu, logvar (..., d_z) → z (..., d_z)."""
    eps = jax.random.normal(key, mu.shape, mu.dtype)
    return mu + jnp.exp(0.5 * logvar) * eps


def vae(encoder: Module, decoder: Module, latent: int) -> Module:
    """A VAE from an ``encoder`` x → (B, 2·latent) (read as [μ, log σ²]) and a ``decoder``
    z → (B, ...). ``apply`` draws z = μ + σ⊙ε with its ``key`` (required when ``train=True``;
    without a key in eval mode it decodes z = μ) and returns a ``VAEOutput``.

    Params and state are ``{'encoder': …, 'decoder': …}`` (``encode``/``decode`` in
    ``jdl.models.autoencoder`` run each half; ``split_code`` reads μ, log σ² from the code).

    Shapes: x (B, ...) → VAEOutput(decoded (B, ...), mu, logvar, z (B, latent)).
    """
    if not isinstance(latent, int) or latent < 1:
        raise ValueError(f"vae: latent must be a positive int, got {latent!r}")

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        k_enc, k_dec = jax.random.split(key)
        enc_params, enc_state = encoder.init(k_enc, x)
        code = jax.eval_shape(lambda p, s, x: encoder.apply(p, s, x)[0], enc_params, enc_state, shape_struct(x))
        if code.ndim != 2 or code.shape[1] != 2 * latent:
            raise ValueError(f"vae: the encoder must return (B, 2·latent) = (B, {2 * latent}) "
                             f"for [μ, log σ²], got {code.shape}")
        dec_params, dec_state = decoder.init(k_dec, jax.ShapeDtypeStruct((code.shape[0], latent), code.dtype))
        return {"encoder": enc_params, "decoder": dec_params}, {"encoder": enc_state, "decoder": dec_state}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False):
        check_key("vae", key, train)
        k_z, k_enc, k_dec = jax.random.split(key, 3) if key is not None else (None,) * 3
        code, enc_state = encoder.apply(params["encoder"], state["encoder"], x, key=k_enc, train=train)
        mu, logvar = split_code(code)
        z = reparameterize(k_z, mu, logvar) if key is not None else mu
        decoded, dec_state = decoder.apply(params["decoder"], state["decoder"], z, key=k_dec, train=train)
        return VAEOutput(decoded, mu, logvar, z), {"encoder": enc_state, "decoder": dec_state}

    return leaf(init, apply, "vae")._replace(children=(encoder, decoder))


def split_code(code: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(B, 2·d_z) → μ (B, d_z), log σ² (B, d_z): the first half and the second."""
    d = code.shape[-1] // 2
    return code[..., :d], code[..., d:]


def dense_vae(input_shape: Sequence[int], hidden: Sequence[int] = (256,), latent: int = 2) -> Module:
    """A fully connected VAE: x → flatten → hidden → [μ, log σ²]; z → reversed hidden → output
    (logits or means, no output activation: the likelihood in the loss reads them)."""
    return vae(dense_encoder(hidden, 2 * latent), dense_decoder(tuple(hidden)[::-1], input_shape), latent)


def conv_vae(input_shape: Sequence[int], channels: Sequence[int] = (16, 32), latent: int = 2) -> Module:
    """A convolutional VAE: stride-2 convolutions to [μ, log σ²], transposed convolutions back."""
    return vae(conv_encoder(input_shape, channels, 2 * latent), conv_decoder(input_shape, channels), latent)


def sample(model: Module, params: Params, state: State, key: PRNGKey, n: int, latent: int) -> jax.Array:
    """Decoder outputs at n draws from the prior, z ~ N(0, I): logits or means (apply a sigmoid
    to Bernoulli logits to see pixel probabilities). Shapes: → (n, ...)."""
    z = jax.random.normal(key, (n, latent))
    return decode(model, params, state, z)


def traversal(model: Module, params: Params, state: State, grid: jax.Array, dims: tuple[int, int] = (0, 1),
              latent: int = 2) -> jax.Array:
    """Decoder outputs over a grid of two latent coordinates, the others at 0: z_{ij} has
    z[dims[0]] = grid[i], z[dims[1]] = grid[j]. Shapes: grid (G,) → (G, G, ...)."""
    g = grid.shape[0]
    a, b = jnp.meshgrid(grid, grid, indexing="ij")  # (G, G) each
    z = jnp.zeros((g * g, latent), grid.dtype).at[:, dims[0]].set(a.ravel()).at[:, dims[1]].set(b.ravel())
    out = decode(model, params, state, z)
    return out.reshape(g, g, *out.shape[1:])


@functools.partial(jax.jit, static_argnames=("model", "k", "likelihood", "sigma"))
def iwae_bound(model: Module, params: Params, state: State, x: jax.Array, key: PRNGKey, k: int,
               likelihood: str = "bernoulli", sigma: float = 1.0) -> jax.Array:
    """The importance-weighted bound on log p(x) with K samples z_1..z_K ~ q(z | x):

        L_K(x) = log (1/K) Σ_k w_k,   w_k = p(x | z_k) p(z_k) / q(z_k | x),

    L_1 is (a one-sample estimate of) the ELBO, L_K ≤ L_{K+1} in expectation, and L_K → log p(x)
    as K → ∞. Computed with log-sum-exp over log w_k; jitted (``model``, ``k``, ``likelihood``
    and ``sigma`` are static), and memory grows as K·B decoder outputs: split a large x in chunks.

    Shapes: x (B, ...) → (B,).
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"iwae_bound: k must be a positive int, got {k!r}")
    encoder = model.children[0]
    mu, logvar = split_code(encoder.apply(params["encoder"], state["encoder"], x)[0])  # (B, d_z) each
    b, d_z = mu.shape
    z = reparameterize(key, jnp.broadcast_to(mu, (k, b, d_z)), jnp.broadcast_to(logvar, (k, b, d_z)))  # (K, B, d_z)
    z = z.reshape(k * b, d_z)
    decoded = decode(model, params, state, z)  # (K·B, ...)
    xs = jnp.broadcast_to(x, (k, *x.shape)).reshape(k * b, *x.shape[1:])  # (K·B, ...)
    log_px_z = losses.decoder_log_likelihood(decoded, xs, likelihood, sigma)  # (K·B,)
    log_pz = losses.gaussian_log_likelihood(jnp.zeros_like(z), z)
    log_qz = losses.gaussian_log_likelihood(jnp.tile(mu, (k, 1)), z, jnp.tile(logvar, (k, 1)))
    log_w = (log_px_z + log_pz - log_qz).reshape(k, b)  # (K, B)
    return jax.nn.logsumexp(log_w, axis=0) - math.log(k)


def vae_objective(model: Module, likelihood: str = "bernoulli", *, beta: float = 1.0, sigma: float = 1.0):
    """The VAE's −ELBO_β as a ``jdl.train.make_step`` loss function on batches x, reporting its
    two terms as metrics (``fit`` with ``losses.vae_loss`` reports only their sum):

        out = model.apply(θ, state, x, key=k, train=True)    (z = μ + σ⊙ε drawn with the step's key)
        ℓ = mean_i [−log p(x_i | z_i) + β·KL(q(z | x_i) ‖ p(z))],  metrics {reconstruction, kl}

    >>> import jdl
    >>> step = jdl.train.make_step(vae_objective(dense_vae((8, 8, 1))), jdl.optim.adam(1e-3))
    """
    losses.vae_loss(likelihood, beta=beta, sigma=sigma)  # validates the arguments

    def loss_fn(params: Params, state: State, x: jax.Array, key: PRNGKey):
        out, new_state = model.apply(params, state, x, key=key, train=True)
        recon = -jnp.mean(losses.decoder_log_likelihood(out.decoded, x, likelihood, sigma))
        kl = losses.gaussian_kl(out.mu, out.logvar)
        return recon + beta * kl, (new_state, {"reconstruction": recon, "kl": kl})

    return loss_fn
