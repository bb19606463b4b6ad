"""The DDPM's variational bound on −log p(x_0) (Sohl-Dickstein et al. 2015; Ho et al. 2020,
eq. 5): the same evidence lower bound as the VAE's, with the T noising steps as the latents,

    −log p(x_0) ≤ L = L_T + Σ_{t=2}^{T} L_{t−1} + L_0,
    L_T     = KL(q(x_T | x_0) ‖ N(0, I))                                         (the prior)
    L_{t−1} = E_{x_t ~ q(x_t | x_0)} KL(q(x_{t−1} | x_t, x_0) ‖ p_θ(x_{t−1} | x_t))    (denoising)
    L_0     = E_{x_1 ~ q(x_1 | x_0)} −log p_θ(x_0 | x_1)                           (the decoder)

with the forward posterior q(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t·I),

    μ̃_t = √ᾱ_{t−1}·β_t/(1 − ᾱ_t)·x_0 + √α_t·(1 − ᾱ_{t−1})/(1 − ᾱ_t)·x_t,   β̃_t = (1 − ᾱ_{t−1})/(1 − ᾱ_t)·β_t,

and the model's step p_θ(x_{t−1} | x_t) = N(μ_θ, σ_t²·I), μ_θ = (x_t − β_t/√(1 − ᾱ_t)·ε_θ(x_t, t))/√α_t,
as in ``jdl.models.diffusion.ancestral_sample``. Data are discrete (K grey levels spread over
[−1, 1]), so p_θ(x_0 | x_1) is Ho et al.'s discretized Gaussian: the mass of N(μ_θ, β_1) on the
bin of width 2/(K − 1) around each pixel, the end bins open to ±∞. L is then a bound on the
negative log-probability of the discrete image, in nats, comparable across models of the same
discrete data.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import log_ndtr

from jdl.models.diffusion import EpsFn, Schedule


class DDPMBound(NamedTuple):
    """The bound per example, in nats: ``total`` = ``prior`` (L_T) + ``diffusion``
    (Σ_{t≥2} L_{t−1}) + ``decoder`` (L_0), each (B,); ``per_step`` (T, B) holds L_0 at index 0
    and L_{t−1} at index t − 1 (where the nats come from)."""

    total: jax.Array
    prior: jax.Array
    diffusion: jax.Array
    decoder: jax.Array
    per_step: jax.Array


def discretized_gaussian_log_likelihood(x: jax.Array, mean: jax.Array, sigma: jax.Array | float,
                                        levels: int) -> jax.Array:
    """log P(x) for x on ``levels`` evenly spaced values in [−1, 1], under N(mean, σ²) binned:

        P(x) = Φ((x + δ − m)/σ) − Φ((x − δ − m)/σ),   δ = 1/(levels − 1)

    with x + δ → +∞ at x = 1 and x − δ → −∞ at x = −1, so the levels' probabilities sum to 1.
    Computed from log Φ in the tail where both ends lie (stable far from the mean).

    Shapes: x, mean (B, ...) → (B, ...) elementwise.
    """
    if not isinstance(levels, int) or levels < 2:
        raise ValueError(f"discretized_gaussian_log_likelihood: levels must be an int >= 2, got {levels!r}")
    delta = 1.0 / (levels - 1)
    hi = jnp.where(x > 1 - delta / 2, jnp.inf, (x + delta - mean) / sigma)
    lo = jnp.where(x < -1 + delta / 2, -jnp.inf, (x - delta - mean) / sigma)
    # Φ(hi) − Φ(lo) = Φ(−lo) − Φ(−hi): take the side whose values are small (the left tail)
    flip = lo > 0
    a, b = jnp.where(flip, -hi, lo), jnp.where(flip, -lo, hi)  # P = Φ(b) − Φ(a), a < b, a ≤ 0
    log_b, log_a = log_ndtr(b), log_ndtr(a)
    return log_b + jnp.log1p(-jnp.exp(jnp.minimum(log_a - log_b, -1e-12)))


def _kl_normal(mean_q, var_q, mean_p, var_p):
    """KL(N(mean_q, var_q) ‖ N(mean_p, var_p)), elementwise."""
    return 0.5 * (jnp.log(var_p / var_q) + (var_q + jnp.square(mean_q - mean_p)) / var_p - 1.0)


def ddpm_bound(eps_fn: EpsFn, schedule: Schedule, x0: jax.Array, key: jax.Array, *, levels: int,
               variance: str = "beta") -> DDPMBound:
    """The variational bound L ≥ −log p(x_0) of a DDPM, one draw of x_t ~ q(x_t | x_0) per step t
    and example (every t = 1 … T is summed, none sampled), with the model's variance σ_t² = β_t
    (``variance='beta'``) or β̃_t (``'posterior'``) for t ≥ 2 and β_1 for the decoder.
    The draw of step t comes from ``fold_in(key, t)``.

    Shapes: x0 (B, ...) on ``levels`` values in [−1, 1] → ``DDPMBound`` of (B,) arrays.
    """
    if variance not in ("beta", "posterior"):
        raise ValueError(f"ddpm_bound: variance must be 'beta' or 'posterior', got {variance!r}")
    s, b = schedule, x0.shape[0]
    abar_prev = jnp.concatenate([jnp.ones((1,), s.alpha_bars.dtype), s.alpha_bars[:-1]])  # ᾱ_{t−1}
    beta_tilde = (1 - abar_prev) / (1 - s.alpha_bars) * s.betas
    sigma2 = s.betas if variance == "beta" else beta_tilde
    per_example = lambda v: v.reshape(b, -1).sum(axis=1)  # noqa: E731  (B, ...) → (B,)

    def term(t):
        i = t - 1
        eps = jax.random.normal(jax.random.fold_in(key, t), x0.shape, x0.dtype)
        x_t = jnp.sqrt(s.alpha_bars[i]) * x0 + jnp.sqrt(1 - s.alpha_bars[i]) * eps
        eps_hat = eps_fn(x_t, jnp.full((b,), t))
        mean_p = (x_t - s.betas[i] / jnp.sqrt(1 - s.alpha_bars[i]) * eps_hat) / jnp.sqrt(s.alphas[i])
        mean_q = (jnp.sqrt(abar_prev[i]) * s.betas[i] * x0 + jnp.sqrt(s.alphas[i]) * (1 - abar_prev[i]) * x_t) \
            / (1 - s.alpha_bars[i])
        kl = per_example(_kl_normal(mean_q, beta_tilde[i], mean_p, sigma2[i]))
        nll0 = -per_example(discretized_gaussian_log_likelihood(x0, mean_p, jnp.sqrt(s.betas[0]), levels))
        return jnp.where(t == 1, nll0, kl)  # (B,)

    T = s.betas.shape[0]
    terms = jax.lax.map(term, jnp.arange(1, T + 1))  # (T, B)
    prior = per_example(_kl_normal(jnp.sqrt(s.alpha_bars[-1]) * x0, 1 - s.alpha_bars[-1], 0.0, 1.0))
    diffusion = terms[1:].sum(axis=0)
    return DDPMBound(prior + diffusion + terms[0], prior, diffusion, terms[0], terms)
