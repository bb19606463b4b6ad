"""Full-batch gradient descent against stochastic and minibatch gradient descent on a convex
problem: the "noise ball" of SGD around the minimum.

Linear regression, ℓ(θ) = ½·mean_i (x_iᵀw + b − y_i)², x_i ~ N(0, I_d), y = x·w_true + σε on n
points, has one minimum θ* (the normal equation, jdl.models.classic). Gradient descent,
θ ← θ − α∇L(θ), converges to θ*; SGD, θ ← θ − α·(1/B)Σ_{i∈batch}∇ℓ_i(θ) with B examples drawn
with replacement, is fast but never settles: it jitters in a ball around θ*. For a quadratic with
Hessian H = I and gradient noise of covariance Σ/B at θ*, the stationary spread solves
(2 − α)S = αΣ/B, so

    E‖θ − θ*‖² ≈ α·tr(Σ) / (B·(2 − α))   ∝ learning rate / batch size.

The experiment runs C chains of every (α, B) for T steps and measures the stationary level (the
mean of ‖θ_t − θ*‖² over the last half of the steps and the chains) against α/B and the formula,
with Σ the per-example gradient covariance measured at θ*.

    python -m experiments.sgd_noise --workdir=runs/sgd_noise [--quick]
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

import jdl
from jdl.models import classic


def make_problem(key: jax.Array, n: int = 500, d: int = 5, sigma: float = 1.0):
    """x (n, d) ~ N(0, I), y = x·w_true + σε (n,), and θ* = {'w', 'b'} by the normal equation."""
    kx, kw, ke = jax.random.split(key, 3)
    x = jax.random.normal(kx, (n, d))
    y = x @ jax.random.normal(kw, (d,)) + sigma * jax.random.normal(ke, (n,))
    return x, y, classic.normal_equation(x, y)


def _loss(theta, x, y):
    """½·mean (xᵀw + b − y)²."""
    return 0.5 * jnp.mean((classic.linear_regression(theta, x) - y) ** 2)


def gradient_noise_trace(x: jax.Array, y: jax.Array, theta_star) -> float:
    """tr Σ: the summed variance of the per-example gradient ∇ℓ_i(θ*) = (x̃_iᵀθ* − y_i)·x̃_i."""
    r = classic.linear_regression(theta_star, x) - y  # (n,)
    g = jnp.concatenate([x, jnp.ones((x.shape[0], 1))], 1) * r[:, None]  # (n, d+1)
    return float(jnp.sum(jnp.var(g, 0)))


def distances(key: jax.Array, x, y, theta_star, lr: float, batch: int | None, steps: int, chains: int):
    """‖θ_t − θ*‖² for every step and chain, from θ_0 = 0 with jdl.optim.sgd(lr); ``batch=None``
    is full-batch gradient descent, otherwise B indices are drawn with replacement every step.
    lr is traced: one compilation per (batch, steps, chains), shared by every lr.

    Returns (chains, steps)."""
    return _distances(jax.random.split(key, chains), x, y, theta_star, jnp.float32(lr), batch, steps)


@functools.partial(jax.jit, static_argnames=("batch", "steps"))
def _distances(keys, x, y, theta_star, lr, batch: int | None, steps: int):
    opt = jdl.optim.sgd(lr)
    theta0 = jax.tree.map(jnp.zeros_like, theta_star)

    def chain(k):
        def body(carry, t):
            theta, s = carry
            if batch is None:
                xb, yb = x, y
            else:
                idx = jax.random.randint(jax.random.fold_in(k, t), (batch,), 0, x.shape[0])
                xb, yb = x[idx], y[idx]
            u, s = opt.update(jax.grad(_loss)(theta, xb, yb), s, theta)
            theta = jax.tree.map(jnp.add, theta, u)
            d2 = sum(jnp.sum((a - b) ** 2) for a, b in zip(jax.tree.leaves(theta), jax.tree.leaves(theta_star)))
            return (theta, s), d2

        return jax.lax.scan(body, (theta0, opt.init(theta0)), jnp.arange(steps))[1]

    return jax.vmap(chain)(keys)


def noise_ball(key: jax.Array, x, y, theta_star, settings, steps: int, chains: int) -> dict:
    """For each (lr, batch) in ``settings``: the stationary level (mean over the last half of
    the steps and all chains), the formula α·trΣ/(B(2 − α)) and the mean curve over chains."""
    trace = gradient_noise_trace(x, y, theta_star)
    out = {}
    for i, (lr, batch) in enumerate(settings):
        d2 = distances(jax.random.fold_in(key, i), x, y, theta_star, lr, batch, steps, chains)
        level = float(jnp.mean(d2[:, steps // 2:]))
        predicted = 0.0 if batch is None else lr * trace / (batch * (2 - lr))
        out[f"lr={lr},B={batch or 'all'}"] = {"lr": lr, "batch": batch or x.shape[0], "full_batch": batch is None,
                                               "level": level, "predicted": predicted,
                                               "curve": np.asarray(d2.mean(0))}
    return out


def run(workdir: str, quick: bool = False, seed: int = 0) -> dict:
    """GD, SGD (B = 1) and minibatch SGD (B = 10, 50) at α = 0.01, 0.02, 0.05; writes
    results.json, noise_ball.png (distance to θ* against steps) and noise_scaling.png."""
    from experiments import sgd_noise_plots
    from experiments.common import write_results

    key = jax.random.key(seed)
    x, y, theta_star = make_problem(jax.random.fold_in(key, 0))
    steps, chains = (1000, 8) if quick else (6000, 32)
    settings = [(0.05, None)] + [(lr, b) for lr in (0.01, 0.02, 0.05) for b in (1, 10, 50)]
    ball = noise_ball(jax.random.fold_in(key, 1), x, y, theta_star, settings, steps, chains)
    os.makedirs(workdir, exist_ok=True)
    results = {"n": int(x.shape[0]), "d": int(x.shape[1]), "steps": steps, "chains": chains,
               "trace_sigma": gradient_noise_trace(x, y, theta_star), "noise_ball": ball}
    results["plots"] = sgd_noise_plots.plot_all(ball, workdir)
    for v in ball.values():
        v["curve"] = v["curve"][:: max(1, steps // 200)]  # keep results.json small
    write_results(workdir, results)
    return results


if __name__ == "__main__":
    from experiments import common

    common.main(run, "sgd_noise")
