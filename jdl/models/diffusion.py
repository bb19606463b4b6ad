"""Denoising diffusion (DDPM, Ho et al. 2020): a fixed forward process that adds Gaussian
noise in T small steps, and a network trained to predict that noise, run backwards to sample.

    forward, one step    q(x_t | x_{t−1}) = N(√(1−β_t)·x_{t−1}, β_t·I)
    forward, closed form q(x_t | x_0)     = N(√ᾱ_t·x_0, (1−ᾱ_t)·I),   α_t = 1−β_t, ᾱ_t = Π_{s≤t} α_s
    training loss        E_{t, x_0, ε} ‖ε − ε_θ(√ᾱ_t·x_0 + √(1−ᾱ_t)·ε, t)‖²
    ancestral sampling   x_{t−1} = (x_t − β_t/√(1−ᾱ_t)·ε_θ(x_t, t))/√α_t + σ_t·z
    DDIM (Song et al.)   x_{t'} = √ᾱ_{t'}·x̂_0 + √(1−ᾱ_{t'}−σ²)·ε_θ + σ·z on a subsequence of steps
    predicted x_0        x̂_0 = (x_t − √(1−ᾱ_t)·ε_θ)/√ᾱ_t, optionally clipped to the data range

Time steps are t = 1 … T; the schedule's arrays hold them at index t − 1, and ᾱ_0 = 1. The
generative-models part of the course (autoencoders, VAEs, GANs, diffusion) is the reference.
``eps_fn(x, t) -> ε̂`` is any noise predictor, t an int array (B,) of steps in 1 … T; samplers
draw the noise of step t from ``fold_in(key, t)``, so two samplers given one key share it.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

EpsFn = Callable[[jax.Array, jax.Array], jax.Array]
Clip = tuple[float, float] | None  # (lo, hi): the data range predicted x_0 is clipped to


class Schedule(NamedTuple):
    """A noise schedule: ``betas`` β_t, ``alphas`` α_t = 1 − β_t and ``alpha_bars``
    ᾱ_t = Π_{s≤t} α_s, each (T,), entry t − 1 holding step t."""

    betas: jax.Array
    alphas: jax.Array
    alpha_bars: jax.Array


def schedule_from_betas(betas: Any) -> Schedule:
    """α_t = 1 − β_t, ᾱ_t = Π_{s≤t} α_s (cumulative product, computed in float32 or x64).

    Shapes: betas (T,) → each field (T,).
    """
    betas = jnp.asarray(betas)
    if betas.ndim != 1 or betas.shape[0] < 1:
        raise ValueError(f"schedule_from_betas: betas must have shape (T,) with T >= 1, got {betas.shape}")
    alphas = 1.0 - betas
    return Schedule(betas, alphas, jnp.cumprod(alphas))


def linear_schedule(T: int, beta_1: float = 1e-4, beta_T: float = 0.02) -> Schedule:
    """DDPM's linear schedule: β_t = β_1 + (t − 1)/(T − 1)·(β_T − β_1), t = 1 … T
    (Ho et al. use T = 1000, β_1 = 1e-4, β_T = 0.02).

    Args:
      T: number of diffusion steps. beta_1, beta_T: the first and last β, 0 < β_1 ≤ β_T < 1.
    """
    _check_T("linear_schedule", T)
    if not 0 < beta_1 <= beta_T < 1:
        raise ValueError(f"linear_schedule: need 0 < beta_1 <= beta_T < 1, got {beta_1}, {beta_T}")
    return schedule_from_betas(jnp.linspace(beta_1, beta_T, T))


def cosine_schedule(T: int, s: float = 0.008, max_beta: float = 0.999) -> Schedule:
    """Nichol & Dhariwal's (2021) cosine schedule, defined through ᾱ:

        ᾱ_t = f(t)/f(0),   f(t) = cos²(π/2 · (t/T + s)/(1 + s)),
        β_t = min(1 − ᾱ_t/ᾱ_{t−1}, max_beta)

    so ᾱ falls like a cosine, slowly at both ends; the clip keeps β_T < 1 (f(T) = 0). The
    returned ``alpha_bars`` are the product of the clipped β's, equal to f(t)/f(0) wherever
    no clip applied.

    Args:
      T: number of diffusion steps. s: the small offset that keeps β_1 from being ~0.
      max_beta: the largest β allowed.
    """
    _check_T("cosine_schedule", T)
    t = jnp.arange(T + 1) / T
    f = jnp.cos(0.5 * math.pi * (t + s) / (1 + s)) ** 2  # (T + 1,): f(0) … f(T)
    abar = f / f[0]
    return schedule_from_betas(jnp.minimum(1.0 - abar[1:] / abar[:-1], max_beta))


def _check_T(name: str, T: int) -> None:
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"{name}: T must be a positive int, got {T!r}")


def _gather(values: jax.Array, t: jax.Array, x: jax.Array) -> jax.Array:
    """values[t − 1] shaped to broadcast against x: (B,) → (B, 1, …, 1)."""
    return values[t - 1].reshape(t.shape + (1,) * (x.ndim - t.ndim))


def q_sample(schedule: Schedule, x0: jax.Array, t: jax.Array, eps: jax.Array) -> jax.Array:
    """A draw from q(x_t | x_0) in closed form: x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε, ε ~ N(0, I).

    Shapes: x0, eps (B, ...), t (B,) int in 1 … T → x_t (B, ...).
    """
    if x0.shape != eps.shape or t.shape != x0.shape[:1]:
        raise ValueError(f"q_sample: need x0 and eps of one shape (B, ...) and t of shape (B,), got "
                         f"x0 {x0.shape}, eps {eps.shape}, t {t.shape}")
    abar = _gather(schedule.alpha_bars, t, x0)
    return jnp.sqrt(abar) * x0 + jnp.sqrt(1.0 - abar) * eps


def q_step(schedule: Schedule, x_prev: jax.Array, t: jax.Array, eps: jax.Array) -> jax.Array:
    """One forward step: x_t = √(1 − β_t)·x_{t−1} + √β_t·ε (iterating it gives ``q_sample``).

    Shapes: x_prev, eps (B, ...), t (B,) → x_t (B, ...).
    """
    beta = _gather(schedule.betas, t, x_prev)
    return jnp.sqrt(1.0 - beta) * x_prev + jnp.sqrt(beta) * eps


def ddpm_loss(eps_fn: EpsFn, schedule: Schedule, x0: jax.Array, key: jax.Array) -> jax.Array:
    """The simplified DDPM objective (Ho et al.'s L_simple), one Monte-Carlo draw per example:

        t ~ U{1 … T},  ε ~ N(0, I),  L = mean_b ‖ε − ε_θ(√ᾱ_t·x_0 + √(1−ᾱ_t)·ε, t)‖² / D

    (the squared error averaged over the D = prod(x0.shape[1:]) coordinates too).

    Shapes: x0 (B, ...) → a scalar.
    """
    kt, ke = jax.random.split(key)
    T = schedule.betas.shape[0]
    t = jax.random.randint(kt, x0.shape[:1], 1, T + 1)
    eps = jax.random.normal(ke, x0.shape, x0.dtype)
    return jnp.mean((eps - eps_fn(q_sample(schedule, x0, t, eps), t)) ** 2)


def predict_x0(x_t: jax.Array, eps: jax.Array, abar_t: jax.Array, clip_x0: Clip = None) -> tuple[jax.Array, jax.Array]:
    """The clean sample the noise prediction implies, and the noise the (clipped) x̂_0 implies:

        x̂_0 = clip((x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t, lo, hi),   ε' = (x_t − √ᾱ_t·x̂_0)/√(1 − ᾱ_t)

    ε' = ε̂ wherever nothing was clipped (``clip_x0=None``: no clip, ε' is ε̂ itself). Dividing
    by √ᾱ_t magnifies a network error δ in ε̂ into δ·√((1 − ᾱ_t)/ᾱ_t) in x̂_0 — ×4,000 at
    the cosine schedule's last step (ᾱ_T ≈ 6e-8 for T = 200) — so samplers that form x̂_0 clip
    it to the data's range (Ho et al.'s ``clip_denoised``; [−1, 1] for images scaled so).

    Shapes: x_t, eps (B, ...), abar_t broadcasting against them → (x̂_0, ε') of x_t's shape.
    """
    x0 = (x_t - jnp.sqrt(1 - abar_t) * eps) / jnp.sqrt(abar_t)
    if clip_x0 is None:
        return x0, eps
    x0 = jnp.clip(x0, clip_x0[0], clip_x0[1])
    return x0, (x_t - jnp.sqrt(abar_t) * x0) / jnp.sqrt(1 - abar_t)


def _check_clip(name: str, clip_x0: Clip) -> None:
    if clip_x0 is not None and (len(clip_x0) != 2 or not clip_x0[0] < clip_x0[1]):
        raise ValueError(f"{name}: clip_x0 must be None or (lo, hi) with lo < hi, e.g. (-1.0, 1.0) for "
                         f"images in [−1, 1]; got {clip_x0!r}")


def ancestral_sample(eps_fn: EpsFn, schedule: Schedule, shape: tuple[int, ...], key: jax.Array, *,
                     variance: str = "beta", x_T: jax.Array | None = None, clip_x0: Clip = None) -> jax.Array:
    """DDPM's sampler: x_T ~ N(0, I), then for t = T … 1

        x_{t−1} = (x_t − β_t/√(1 − ᾱ_t) · ε_θ(x_t, t)) / √α_t + σ_t·z,   z ~ N(0, I), z = 0 at t = 1

    with σ_t² = β_t (``variance='beta'``) or the posterior's β̃_t = (1 − ᾱ_{t−1})/(1 − ᾱ_t)·β_t
    (``'posterior'``); Ho et al. found both give similar samples. z of step t is drawn from
    ``fold_in(key, t)``, x_T from ``fold_in(key, 0)`` unless given.

    With ``clip_x0=(lo, hi)`` the mean is the posterior's, written through a clipped x̂_0
    (``predict_x0``; Ho et al.'s sampler for images):

        mean = √ᾱ_{t−1}·β_t/(1 − ᾱ_t)·x̂_0 + √α_t·(1 − ᾱ_{t−1})/(1 − ᾱ_t)·x_t

    which equals the update above when nothing is clipped.

    Shapes: → x_0 of ``shape`` (B, ...).
    """
    if variance not in ("beta", "posterior"):
        raise ValueError(f"ancestral_sample: variance must be 'beta' or 'posterior', got {variance!r}")
    _check_clip("ancestral_sample", clip_x0)
    s = schedule
    abar_prev = jnp.concatenate([jnp.ones((1,), s.alpha_bars.dtype), s.alpha_bars[:-1]])
    sigma2 = s.betas if variance == "beta" else (1 - abar_prev) / (1 - s.alpha_bars) * s.betas
    x = jax.random.normal(jax.random.fold_in(key, 0), shape) if x_T is None else x_T

    def body(x, t):
        i = t - 1
        eps = eps_fn(x, jnp.full(shape[:1], t))
        if clip_x0 is None:
            mean = (x - s.betas[i] / jnp.sqrt(1 - s.alpha_bars[i]) * eps) / jnp.sqrt(s.alphas[i])
        else:
            x0, _ = predict_x0(x, eps, s.alpha_bars[i], clip_x0)
            mean = (jnp.sqrt(abar_prev[i]) * s.betas[i] * x0
                    + jnp.sqrt(s.alphas[i]) * (1 - abar_prev[i]) * x) / (1 - s.alpha_bars[i])
        z = jax.random.normal(jax.random.fold_in(key, t), shape)
        return mean + jnp.where(t > 1, jnp.sqrt(sigma2[i]), 0.0) * z, None

    T = s.betas.shape[0]
    x, _ = jax.lax.scan(body, x, jnp.arange(T, 0, -1))
    return x


def ddim_timesteps(T: int, steps: int) -> jax.Array:
    """``steps`` evenly spaced time steps τ_1 < … < τ_S in 1 … T, ending at T (τ_S = T); with
    steps = T, every step 1 … T.

    Shapes: → (S,) int32.
    """
    if not isinstance(steps, int) or not 1 <= steps <= T:
        raise ValueError(f"ddim_timesteps: steps must be an int in 1 … T={T}, got {steps!r}")
    return jnp.asarray([round(T - i * T / steps) for i in range(steps)][::-1], jnp.int32)


def ddim_sample(eps_fn: EpsFn, schedule: Schedule, shape: tuple[int, ...], key: jax.Array, *,
                steps: int, eta: float = 0.0, x_T: jax.Array | None = None, clip_x0: Clip = None) -> jax.Array:
    """DDIM's sampler (Song et al. 2021) on S = ``steps`` steps τ_S = T > … > τ_1, τ_0 = 0:

        x̂_0 = (x_t − √(1 − ᾱ_t)·ε̂)/√ᾱ_t,   ε̂ = ε_θ(x_t, t),   t = τ_i, t' = τ_{i−1}
        σ = η · √((1 − ᾱ_{t'})/(1 − ᾱ_t)) · √(1 − ᾱ_t/ᾱ_{t'})
        x_{t'} = √ᾱ_{t'}·x̂_0 + √(1 − ᾱ_{t'} − σ²)·ε̂ + σ·z,    ᾱ_0 = 1

    η = 0 is deterministic: x_0 is a fixed function of x_T, so S ≪ T steps still land on the data.
    η = 1 with every step (S = T) makes σ² = β̃_t and the update DDPM's ancestral step with the
    posterior variance (the same x_0 for the same noise, tested). z of step t is drawn from
    ``fold_in(key, t)``, x_T from ``fold_in(key, 0)`` unless given.

    ``clip_x0=(lo, hi)`` clips x̂_0 to the data range and uses the noise ε' it implies in place
    of ε̂ (``predict_x0``). Pass it for images (``(-1.0, 1.0)`` for pixels scaled to [−1, 1]):
    with the cosine schedule's ᾱ_T ≈ 6e-8 the first step amplifies the network's error in ε̂
    several thousand times in x̂_0, and without the clip DDIM's samples are noise
    (docs/diffusion.md). Clipping changes nothing where x̂_0 is already in range.

    Shapes: → x_0 of ``shape`` (B, ...).
    """
    _check_clip("ddim_sample", clip_x0)
    T = schedule.betas.shape[0]
    taus = ddim_timesteps(T, steps)
    abar = jnp.concatenate([jnp.ones((1,), schedule.alpha_bars.dtype), schedule.alpha_bars])  # ᾱ_0 … ᾱ_T
    x = jax.random.normal(jax.random.fold_in(key, 0), shape) if x_T is None else x_T
    pairs = jnp.stack([taus, jnp.concatenate([jnp.zeros((1,), jnp.int32), taus[:-1]])], axis=1)[::-1]  # (S, 2)

    def body(x, pair):
        t, t_prev = pair[0], pair[1]
        a_t, a_prev = abar[t], abar[t_prev]
        x0_hat, eps = predict_x0(x, eps_fn(x, jnp.full(shape[:1], t)), a_t, clip_x0)
        sigma = eta * jnp.sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))
        z = jax.random.normal(jax.random.fold_in(key, t), shape)
        direction = jnp.sqrt(jnp.maximum(1 - a_prev - sigma ** 2, 0.0)) * eps
        return jnp.sqrt(a_prev) * x0_hat + direction + sigma * z, None

    x, _ = jax.lax.scan(body, x, pairs)
    return x
