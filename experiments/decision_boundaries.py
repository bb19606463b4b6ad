"""Logistic regression against MLPs of growing width on moons, circles and spirals.

A linear model draws one straight boundary, so it cannot separate circles or spirals; one
hidden layer of tanh units bends the boundary, and more units bend it further. Each model is
trained by full-batch gradient descent on the 800 training points and scored on the 200 test
points; the plot shows every decision region.

    python -m experiments.decision_boundaries --workdir=runs/decision_boundaries [--quick]
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

import jdl
from jdl.models import classic

DATASETS = ("moons", "circles", "spirals")


def plot_decision_regions(ax, predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray,
                          title: str, margin: float = 0.3, resolution: int = 150) -> None:
    """Shade the class ``predict`` gives on a grid around the points x (N, 2), then scatter them
    coloured by y. ``predict`` maps (M, 2) float32 points to (M,) class indices."""
    lo, hi = x.min(0) - margin, x.max(0) + margin
    g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    grid = np.stack([g0.ravel(), g1.ravel()], 1).astype(np.float32)  # (R², 2)
    regions = np.asarray(predict(grid)).reshape(g0.shape)
    ax.contourf(g0, g1, regions, levels=[-0.5, 0.5, 1.5], colors=["#a6cee3", "#fdbf6f"], alpha=0.8)
    ax.scatter(x[:, 0], x[:, 1], c=y, cmap="Paired", s=60 if len(x) < 50 else 8, edgecolors="k",
               linewidths=0.3)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def train_mlp(x: np.ndarray, y: np.ndarray, width: int, steps: int, lr: float, seed: int):
    """One hidden tanh layer of ``width`` units, softmax output, full-batch SGD; returns a
    predict function and the final training loss."""
    model = jdl.models.mlp([width, 2], activation=jdl.nn.tanh, w_init=jdl.init.xavier_normal)
    opt = jdl.optim.sgd(lr)
    ts = jdl.train.init_train_state(model, opt, x, seed=seed)
    step = jdl.train.make_step(jdl.train.supervised(model, jdl.losses.softmax_cross_entropy), opt)
    batch = (jnp.asarray(x), jnp.asarray(y))
    metrics = {}
    for _ in range(steps):
        ts, metrics = step(ts, batch)
    params, state = ts.params, ts.state
    predict = jax.jit(lambda g: jnp.argmax(model.apply(params, state, g)[0], -1))
    return predict, float(metrics["loss"])


def train_logistic(x: np.ndarray, y: np.ndarray, steps: int, lr: float):
    """Logistic regression by gradient descent with the hand-derived gradient (a − y)x."""
    params, losses = classic.gradient_descent(
        classic.logistic_regression_loss, classic.logistic_regression_grad, classic.init_regression(2),
        jnp.asarray(x), jnp.asarray(y, jnp.float32), lr, steps)
    predict = jax.jit(lambda g: (classic.logistic_regression(params, g) > 0.5).astype(jnp.int32))
    return predict, float(losses[-1])


def run(workdir: str, quick: bool = False, seed: int = 0, widths: tuple[int, ...] = (2, 8, 32, 128)) -> dict:
    """Train logistic regression and MLPs of each width on every data set; write results.json
    (test accuracy per data set and model) and decision_boundaries.png."""
    from matplotlib.figure import Figure

    steps = 300 if quick else 10000
    widths = tuple(widths[:3]) if quick else tuple(widths)
    names = ["logistic"] + [f"mlp_{w}" for w in widths]
    fig = Figure(figsize=(2.4 * len(names), 2.4 * len(DATASETS)))
    axes = fig.subplots(len(DATASETS), len(names))
    results: dict = {"steps": steps, "widths": list(widths), "test_accuracy": {}, "train_loss": {}}
    for r, data in enumerate(DATASETS):
        # all 800 published training points (fixed models, nothing chosen on the test set)
        (x, y), (xt, yt) = jdl.data.load(data, "train", validation_fraction=0), jdl.data.load(data, "test")
        acc, loss = {}, {}
        for c, name in enumerate(names):
            if name == "logistic":
                predict, loss[name] = train_logistic(x, y, steps, lr=1.0)
            else:
                predict, loss[name] = train_mlp(x, y, int(name[4:]), steps, lr=0.5, seed=seed)
            acc[name] = float(np.mean(np.asarray(predict(xt)) == yt))
            plot_decision_regions(axes[r, c], predict, x, y, f"{data}: {name}\ntest acc {acc[name]:.2f}")
        results["test_accuracy"][data], results["train_loss"][data] = acc, loss
    from experiments import common

    common.save_figure(fig, workdir, "decision_boundaries.png")
    common.write_results(workdir, results)
    return results


if __name__ == "__main__":
    from experiments import common

    common.main(run, "decision_boundaries")
