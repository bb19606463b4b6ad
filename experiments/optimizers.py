"""Optimizers compared: (a) trajectories on 2-D surfaces — a ravine (an ill-conditioned quadratic),
Rosenbrock's banana and a saddle — drawn on contour plots; (b) the same MLP trained on digits with
each optimizer (mean and spread over 3 seeds) and with plain SGD under each learning-rate schedule.

    python -m experiments.optimizers --workdir=runs/optimizers [--quick]

Writes results.json, surfaces.png, digits_optimizers.png and digits_schedules.png into workdir.
"""

from __future__ import annotations

import os
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jdl import data, losses, models, optim, train
from jdl.optim import schedules

# ---------------------------------------------------------------- (a) 2-D surfaces


def ravine(p):
    """f = ½(x² + 25·y²): curvature 25 times larger across the valley than along it."""
    return 0.5 * (p[0] ** 2 + 25.0 * p[1] ** 2)


def rosenbrock(p):
    """f = (1 − x)² + 100·(y − x²)²: a curved, flat-bottomed valley; minimum at (1, 1)."""
    return (1 - p[0]) ** 2 + 100.0 * (p[1] - p[0] ** 2) ** 2


def saddle(p):
    """f = ½x² + ¼y⁴ − ½y²: a saddle at the origin, minima at (0, ±1); starts almost on the ridge."""
    return 0.5 * p[0] ** 2 + 0.25 * p[1] ** 4 - 0.5 * p[1] ** 2


# name: (f, start, minimum, steps, plot box (x0, x1, y0, y1), {optimizer: learning rate})
SURFACES = {
    "ravine": (ravine, (-4.0, 1.0), (0.0, 0.0), 100, (-4.5, 1.0, -1.5, 1.5),
               {"sgd": 0.075, "momentum": 0.03, "nesterov": 0.03, "adagrad": 0.8, "rmsprop": 0.1, "adam": 0.3}),
    "rosenbrock": (rosenbrock, (-1.2, 1.0), (1.0, 1.0), 3000, (-1.6, 1.6, -0.5, 1.7),
                   {"sgd": 1e-3, "momentum": 1e-3, "nesterov": 1e-3, "adagrad": 0.3, "rmsprop": 3e-3,
                    "adam": 0.05}),
    "saddle": (saddle, (2.0, 1e-3), (0.0, 1.0), 60, (-1.0, 2.2, -0.5, 1.6),
               {"sgd": 0.1, "momentum": 0.1, "nesterov": 0.1, "adagrad": 0.3, "rmsprop": 0.05, "adam": 0.1}),
}

OPTIMIZERS_2D: dict[str, Callable[[float], optim.GradientTransformation]] = {
    "sgd": optim.sgd,
    "momentum": lambda lr: optim.sgd(lr, momentum=0.9),
    "nesterov": lambda lr: optim.sgd(lr, momentum=0.9, nesterov=True),
    "adagrad": optim.adagrad,
    "rmsprop": optim.rmsprop,
    "adam": optim.adam,
}


def trajectory(opt: optim.GradientTransformation, f: Callable, start, steps: int) -> np.ndarray:
    """The points θ_0 … θ_steps of ``opt`` minimizing ``f`` from ``start``; shape (steps + 1, 2)."""

    def body(carry, _):
        p, s = carry
        u, s = opt.update(jax.grad(f)(p), s, p)
        p = optim.apply_updates(p, u)
        return (p, s), p

    p0 = jnp.asarray(start, jnp.float32)
    _, path = jax.jit(lambda p: jax.lax.scan(body, (p, opt.init(p)), None, length=steps))(p0)
    return np.concatenate([np.asarray(p0)[None], np.asarray(path)])


def describe(path: np.ndarray, f: Callable, minimum, steep_axis: int = 1) -> dict:
    """Final loss and distance, first step within 1e-3 of the minimum's loss, and the number of
    sign changes of the error along the steep axis (oscillation)."""
    loss = np.asarray(jax.vmap(f)(jnp.asarray(path)))
    target = float(f(jnp.asarray(minimum, jnp.float32)))
    hit = np.nonzero(loss - target < 1e-3)[0]
    err = path[:, steep_axis] - minimum[steep_axis]
    return {"final_loss": float(loss[-1]), "final_point": path[-1].tolist(),
            "distance": float(np.linalg.norm(path[-1] - np.asarray(minimum))),
            "steps_to_1e-3": int(hit[0]) if len(hit) else None,
            "sign_changes": int(np.sum(np.sign(err[1:]) * np.sign(err[:-1]) < 0)),
            "max_overshoot_x": float(np.max(path[:, 0] - minimum[0]))}


def run_surfaces(quick: bool) -> tuple[dict, dict]:
    """Every optimizer on every surface: ({surface: {optimizer: describe(...)}}, {.. : path})."""
    results, paths = {}, {}
    for name, (f, start, minimum, steps, _, rates) in SURFACES.items():
        steps = min(steps, 100) if quick else steps
        results[name], paths[name] = {}, {}
        for opt_name, make in OPTIMIZERS_2D.items():
            path = trajectory(make(rates[opt_name]), f, start, steps)
            paths[name][opt_name] = path
            results[name][opt_name] = {"learning_rate": rates[opt_name], "steps": steps,
                                       **describe(path, f, minimum)}
    return results, paths


def plot_surfaces(paths: dict, path: str) -> None:
    """Contours with each optimizer's trajectory (top) and f − f* per step (bottom), one column a surface."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 7))
    axes = fig.subplots(2, 3, gridspec_kw={"height_ratios": [3, 2]})
    colors = dict(zip(OPTIMIZERS_2D, colormaps["tab10"].colors))
    for col, (name, (f, start, minimum, _, box, _)) in enumerate(SURFACES.items()):
        ax = axes[0, col]
        xs, ys = np.meshgrid(np.linspace(box[0], box[1], 150), np.linspace(box[2], box[3], 150))
        zs = np.asarray(f(jnp.stack([jnp.asarray(xs), jnp.asarray(ys)])))  # f broadcasts over the grid
        levels = np.quantile(zs, np.linspace(0.0, 0.9, 25) ** 2)
        ax.contour(xs, ys, zs, levels=np.unique(levels), colors="0.75", linewidths=0.6)
        for opt_name, p in paths[name].items():
            p = p[:: max(1, len(p) // 500)]  # at most ~500 points a line keeps the PNG small
            ax.plot(p[:, 0], p[:, 1], "-", color=colors[opt_name], lw=1.2, label=opt_name, alpha=0.9)
        ax.plot(*start, "ko", ms=4)
        ax.plot(*minimum, "k*", ms=9)
        ax.set(xlim=box[:2], ylim=box[2:], title=name)
        loss_ax = axes[1, col]
        target = float(f(jnp.asarray(minimum, jnp.float32)))
        for opt_name, p in paths[name].items():
            loss = np.asarray(jax.vmap(f)(jnp.asarray(p))) - target
            loss_ax.semilogy(np.maximum(loss, 1e-12), color=colors[opt_name], lw=1.2, label=opt_name)
        loss_ax.set(xlabel="step", ylabel="f − f*")
    axes[0, 0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=60)


# ---------------------------------------------------------------- (b) digits MLP

DIGITS_OPTIMIZERS = {
    "sgd": lambda lr: optim.sgd(lr),
    "momentum": lambda lr: optim.sgd(lr, momentum=0.9),
    "nesterov": lambda lr: optim.sgd(lr, momentum=0.9, nesterov=True),
    "adagrad": lambda lr: optim.adagrad(lr),
    "rmsprop": lambda lr: optim.rmsprop(lr),
    "adam": lambda lr: optim.adam(lr),
    "adamw": lambda lr: optim.adamw(lr, weight_decay=1e-2),
}
DIGITS_RATES = {"sgd": 0.1, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.05, "rmsprop": 1e-3,
                "adam": 1e-3, "adamw": 1e-3}


def digits_schedules(lr: float, total: int) -> dict:
    """The learning-rate schedules compared with SGD, over ``total`` update steps."""
    period = max(1, total // 4)
    return {
        "constant": lr,
        "exponential": schedules.exponential_decay(lr, period, 0.5),
        "step": schedules.step_decay(lr, period, 0.5),
        "inverse_time": schedules.inverse_time_decay(lr, 1.0, period),
        "cosine": schedules.cosine_decay_schedule(lr, total),
        "warmup_cosine": schedules.warmup_cosine_decay_schedule(0.0, lr, max(1, total // 10), total),
    }


def fit_digits(opt, seed: int, epochs: int, train_data, test_data) -> dict:
    """Per-epoch curves of an MLP 64 → 128 → 10 trained with ``opt``."""
    start = time.perf_counter()
    result = train.fit(models.mlp([128, 10]), losses.softmax_cross_entropy, opt, train_data, test_data=test_data,
                       test_every_epoch=True, epochs=epochs, batch_size=32, seed=seed, progress=False)
    h = result.history
    return {key: [r[key] for r in h] for key in ("train_loss", "test_loss", "test_accuracy")} | \
        {"wall_s": time.perf_counter() - start}


def summarize(runs: list[dict]) -> dict:
    """Mean and standard deviation over seeds of each curve."""
    out = {}
    for key in ("train_loss", "test_loss", "test_accuracy"):
        curves = np.asarray([r[key] for r in runs])
        out[key] = {"mean": curves.mean(0).tolist(), "std": curves.std(0).tolist()}
    out["final_test_accuracy"] = out["test_accuracy"]["mean"][-1]
    out["final_test_accuracy_std"] = out["test_accuracy"]["std"][-1]
    out["wall_s"] = float(np.mean([r["wall_s"] for r in runs]))
    return out


def run_digits(quick: bool, seed: int) -> dict:
    """Curves per optimizer and per schedule (SGD, η₀ = 0.1), summarized over 3 seeds (1 if quick)."""
    # the published split (every optimizer is shown, none chosen on the test set)
    train_data, test_data = data.load("digits", "train", validation_fraction=0), data.load("digits", "test")
    if quick:
        train_data = (train_data[0][:320], train_data[1][:320])
    epochs, seeds = (1, [seed]) if quick else (20, [seed, seed + 1, seed + 2])
    names = ["sgd"] if quick else list(DIGITS_OPTIMIZERS)
    by_optimizer = {name: summarize([fit_digits(DIGITS_OPTIMIZERS[name](DIGITS_RATES[name]), s, epochs,
                                                train_data, test_data) for s in seeds])
                    | {"learning_rate": DIGITS_RATES[name]} for name in names}
    per_epoch = len(train_data[0]) // 32
    lrs = digits_schedules(0.1, epochs * per_epoch)
    if quick:
        lrs = {k: lrs[k] for k in ("cosine",)}
    by_schedule = {name: summarize([fit_digits(optim.sgd(lr), s, epochs, train_data, test_data) for s in seeds])
                   | {"lr_curve": [float(lr(jnp.int32(t))) if callable(lr) else lr
                                   for t in range(0, epochs * per_epoch + 1, per_epoch)]}
                   for name, lr in lrs.items()}
    return {"epochs": epochs, "seeds": seeds, "optimizers": by_optimizer, "schedules": by_schedule}


def plot_digits(results: dict, key: str, path: str, title: str) -> None:
    """Test loss and accuracy per epoch, mean ± std band (and η_t for the schedules)."""
    from matplotlib.figure import Figure

    runs = results[key]
    panels = [("test_loss", "test loss"), ("test_accuracy", "test accuracy")]
    if key == "schedules":
        panels.append(("lr_curve", "learning rate"))
    fig = Figure(figsize=(4.5 * len(panels), 3.6))
    axes = fig.subplots(1, len(panels))
    for ax, (metric, label) in zip(axes, panels):
        for name, r in runs.items():
            if metric == "lr_curve":
                ax.plot(range(len(r[metric])), r[metric], label=name)
                continue
            mean, std = np.asarray(r[metric]["mean"]), np.asarray(r[metric]["std"])
            epochs = np.arange(1, len(mean) + 1)
            ax.plot(epochs, mean, label=name)
            ax.fill_between(epochs, mean - std, mean + std, alpha=0.2)
        ax.set(xlabel="epoch", ylabel=label)
        if metric == "test_accuracy":
            ax.set_ylim(0.85, 1.0)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=72)


def run(workdir: str, quick: bool = False, seed: int = 0) -> dict:
    """Run (a) and (b); write results.json and three PNGs into ``workdir``; return the results."""
    from experiments import common

    os.makedirs(workdir, exist_ok=True)
    surfaces, paths = run_surfaces(quick)
    plot_surfaces(paths, os.path.join(workdir, "surfaces.png"))
    digits = run_digits(quick, seed)
    n = len(digits["seeds"])
    plot_digits(digits, "optimizers", os.path.join(workdir, "digits_optimizers.png"),
                f"MLP on digits, each optimizer (mean ± std over {n} seed{'s' * (n > 1)})")
    plot_digits(digits, "schedules", os.path.join(workdir, "digits_schedules.png"),
                "MLP on digits, SGD (η₀ = 0.1) under each schedule")
    results = {"surfaces": surfaces, "digits": digits, "quick": quick, "seed": seed}
    common.write_results(workdir, results)
    return results


if __name__ == "__main__":
    from experiments import common

    common.main(run, "optimizers")
