"""The bias–variance decomposition measured: models of growing capacity fitted to many resampled
training sets of one regression problem with a known truth.

The data: x ~ U[−1, 1], y = f(x) + ε with f(x) = sin(πx) and ε ~ N(0, σ²). A model fitted to a
training set D predicts ŷ_D(x); over many training sets D (and for the MLPs, initializations),
at every test point x,

    E_D,ε[(ŷ_D(x) − y)²] = (E_D[ŷ_D(x)] − f(x))²  +  Var_D[ŷ_D(x)]  +  σ²
                              bias²                     variance        noise

(the course's Bias[θ̂] = E[θ̂] − θ and Var[θ̂] = E[θ̂²] − E[θ̂]², with θ̂ = ŷ_D(x) and θ = f(x)).
The experiment estimates each term with R training sets, averages over 200 test points, and
measures the left side directly with fresh noisy test labels: the sum matches it to Monte-Carlo
precision. Capacity is the degree of a polynomial (Legendre features, least squares with a tiny
ridge, jdl.models.classic.normal_equation) and the width of a one-hidden-layer tanh MLP (full-batch
Adam via jdl.train.make_step, vmapped over the R training sets). The learning curve (test and
training error against the training-set size) shows a degree-1 model under-fitting (both errors
meet at bias² + σ², far above σ²) and a degree-12 model over-fitting (a large gap at small n).

    python -m experiments.bias_variance --workdir=runs/bias_variance [--quick]
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from jdl.models import classic


@dataclass(frozen=True)
class Problem:
    """y = sin(πx) + N(0, sigma²) on x ~ U[−1, 1]; n_train points per training set; n_test test
    points on a regular grid of [−1, 1]."""

    sigma: float = 0.3
    n_train: int = 20
    n_test: int = 200


def f_true(x: jax.Array) -> jax.Array:
    """f(x) = sin(πx): E[f] = 0 and E[f²] = ½ under x ~ U[−1, 1]."""
    return jnp.sin(jnp.pi * x)


def legendre_features(x: jax.Array, degree: int) -> jax.Array:
    """[P_1(x), …, P_degree(x)] by (k+1)P_{k+1} = (2k+1)xP_k − kP_{k−1}: orthogonal on [−1, 1],
    so the least-squares system stays well conditioned in float32 (the bias is fitted separately).

    Shapes: x (N,) → (N, degree) (degree 0 gives (N, 0): the constant model)."""
    p_prev, p = jnp.ones_like(x), x
    cols = []
    for k in range(1, degree + 1):
        cols.append(p)
        p_prev, p = p, ((2 * k + 1) * x * p - k * p_prev) / (k + 1)
    return jnp.stack(cols, 1) if cols else jnp.zeros((x.shape[0], 0), x.dtype)


def sample_sets(key: jax.Array, problem: Problem, n_sets: int, n_train: int | None = None):
    """n_sets training sets: x (R, n) uniform on [−1, 1], y = f(x) + σε (R, n)."""
    n = n_train or problem.n_train
    kx, ke = jax.random.split(key)
    x = jax.random.uniform(kx, (n_sets, n), minval=-1.0, maxval=1.0)
    return x, f_true(x) + problem.sigma * jax.random.normal(ke, x.shape)


def polynomial_fit_predict(x: jax.Array, y: jax.Array, x_test: jax.Array, degree: int, ridge: float = 1e-4):
    """Fit one polynomial of ``degree`` by ridge least squares, θ = (X̃ᵀX̃ + λI₀)⁻¹X̃ᵀy, and predict.

    Shapes: x, y (R, n) training sets; x_test (M,) → (predictions (R, M), training MSE (R,))."""
    def one(xr, yr):
        theta = classic.normal_equation(legendre_features(xr, degree), yr, method="ridge", ridge=ridge)
        fit = classic.linear_regression(theta, legendre_features(xr, degree))
        return classic.linear_regression(theta, legendre_features(x_test, degree)), jnp.mean((fit - yr) ** 2)

    return jax.vmap(one)(x, y)


def decompose(pred: jax.Array, f_test: jax.Array, y_test: jax.Array, sigma: float) -> dict:
    """bias² = mean_x (ȳ(x) − f(x))², variance = mean_x mean_D (ŷ_D(x) − ȳ(x))², noise = σ², and
    the test MSE measured directly, mean_D,x (ŷ_D(x) − y_D(x))², with y_D fresh noisy labels.

    Shapes: pred (R, M) predictions of R fitted models at M test points; f_test (M,); y_test (R, M)."""
    mean = pred.mean(0)  # (M,)
    bias2 = float(jnp.mean((mean - f_test) ** 2))
    variance = float(jnp.mean((pred - mean[None, :]) ** 2))
    test_mse = float(jnp.mean((pred - y_test) ** 2))
    return {"bias2": bias2, "variance": variance, "noise": sigma ** 2, "sum": bias2 + variance + sigma ** 2,
            "test_mse": test_mse}


def test_points(key: jax.Array, problem: Problem, n_sets: int):
    """The test grid x (M,), f there (M,) and independent noisy labels for every training set (R, M)."""
    x = jnp.linspace(-1.0, 1.0, problem.n_test)
    f = f_true(x)
    return x, f, f[None, :] + problem.sigma * jax.random.normal(key, (n_sets, problem.n_test))


def polynomial_capacity(key: jax.Array, problem: Problem, degrees, n_sets: int) -> dict:
    """bias², variance, noise, their sum, the measured test MSE and the training MSE per degree."""
    k_train, k_test = jax.random.split(key)
    x, y = sample_sets(k_train, problem, n_sets)
    x_test, f_test, y_test = test_points(k_test, problem, n_sets)
    out = {}
    for d in degrees:
        pred, train_mse = polynomial_fit_predict(x, y, x_test, d)
        out[d] = {**decompose(pred, f_test, y_test, problem.sigma), "train_mse": float(train_mse.mean())}
    return out


def learning_curve(key: jax.Array, problem: Problem, degree: int, sizes, n_sets: int) -> dict:
    """Training and test MSE (mean over n_sets training sets) of a degree-``degree`` polynomial
    against the training-set size n."""
    out = {}
    for i, n in enumerate(sizes):
        k_train, k_test = jax.random.split(jax.random.fold_in(key, i))
        x, y = sample_sets(k_train, problem, n_sets, n)
        x_test, f_test, y_test = test_points(k_test, problem, n_sets)
        pred, train_mse = polynomial_fit_predict(x, y, x_test, degree)
        out[n] = {"train_mse": float(train_mse.mean()), **decompose(pred, f_test, y_test, problem.sigma)}
    return out


def run(workdir: str, quick: bool = False, seed: int = 0) -> dict:
    """Polynomial degrees 0..12 and MLP widths on R resampled training sets (R = 200; 50 with
    ``quick``), and learning curves of degrees 1 and 12; writes results.json and three plots."""
    from experiments import bias_variance_mlp, bias_variance_plots
    from experiments.common import write_results

    problem = Problem()
    n_sets = 50 if quick else 200
    key = jax.random.key(seed)
    degrees = list(range(13))
    poly = polynomial_capacity(jax.random.fold_in(key, 0), problem, degrees, n_sets)
    widths = (1, 2, 4, 16) if quick else (1, 2, 4, 8, 16, 32, 128)
    mlp = bias_variance_mlp.mlp_capacity(jax.random.fold_in(key, 1), problem, widths, n_sets,
                                         steps=300 if quick else 3000)
    sizes = (15, 20, 40, 100) if quick else (15, 20, 30, 50, 100, 200, 500, 1000)
    curves = {d: learning_curve(jax.random.fold_in(key, 2 + d), problem, d, sizes, n_sets) for d in (1, 12)}
    best = min(degrees, key=lambda d: poly[d]["test_mse"])
    best_width = min(widths, key=lambda w: mlp[w]["test_mse"])
    results = {"problem": {"f": "sin(pi x)", "sigma": problem.sigma, "n_train": problem.n_train,
                           "n_test": problem.n_test}, "n_sets": n_sets,
               "polynomial": {str(d): v for d, v in poly.items()}, "best_degree": best,
               "mlp": {str(w): v for w, v in mlp.items()}, "best_width": best_width,
               "learning_curve": {str(d): {str(n): v for n, v in c.items()} for d, c in curves.items()},
               "max_relative_gap_sum_vs_test": max(abs(v["sum"] - v["test_mse"]) / v["test_mse"]
                                                   for v in [*poly.values(), *mlp.values()])}
    os.makedirs(workdir, exist_ok=True)
    results["plots"] = bias_variance_plots.plot_all(results, workdir)
    write_results(workdir, results)
    return results


if __name__ == "__main__":
    from experiments import common

    common.main(run, "bias_variance")
