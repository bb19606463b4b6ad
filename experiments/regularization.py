"""Regularization on a deliberately small training set: the train/validation gap without and
with L1, L2, dropout, augmentation, early stopping and all of them together.

An MLP (64 → 256 → 256 → 10) learns 200 of the 8×8 digits, far too few for its ~85k weights,
and is validated on the other 1,237 digits of the published training set. Every decision
(early stopping's epoch) is taken on validation; the 360 test digits are evaluated once per run,
at the end. For every configuration and seed it reports the final (or, with early stopping, the
restored best) accuracy and loss on the training and validation sets, both in evaluation mode,
and the test accuracy; gap = train − validation accuracy. It also keeps the first layer's weights of the
unregularized, L1 and L2 runs: their histograms show L1's sparsity (many weights at ≈ 0) against
L2's uniform shrinkage.

    python -m experiments.regularization --workdir=runs/regularization [--quick]
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np

N_TRAIN = 200
CONFIGS: dict[str, dict[str, Any]] = {
    "none": {},
    "l1": {"l1": 1e-3},
    "l2": {"l2": 1e-2},
    "dropout": {"dropout": 0.5},
    "augment": {"augment": True},
    "early_stopping": {"patience": 5},
    "combined": {"l2": 1e-3, "dropout": 0.2, "augment": True, "patience": 20},
}


def small_digits(seed: int = 0, n_train: int = N_TRAIN):
    """n_train digits drawn (seeded) from the published training set, and the rest of that set
    (1,437 − n_train digits) to validate on; the test split stays untouched.

    Drawing from the published set keeps the training draws of earlier versions; the other
    1,237 digits make a larger, less noisy validation set than the 144 of ``load('digits',
    'validation')``, and are as unseen in training.
    """
    from jdl import data

    x, y = data.load("digits", "train", validation_fraction=0)
    idx = np.random.default_rng(seed).choice(len(x), n_train, replace=False)
    rest = np.setdiff1d(np.arange(len(x)), idx)
    return (x[idx], y[idx]), (x[rest], y[rest])


def data_test():
    """The 360 test digits: evaluated once per run, after training, never to choose anything."""
    from jdl import data

    return data.load("digits", "test")


def train_config(options: dict, train, val, test, *, seed: int, epochs: int, batch_size: int = 32,
                 learning_rate: float = 0.1) -> dict:
    """Train one configuration; returns its metrics, curves and first-layer weights."""
    import jdl
    from jdl import regularizers
    from jdl.data import augment
    from jdl.losses import softmax_cross_entropy
    from jdl.train import evaluate, fit, make_eval_step

    model = jdl.models.mlp([256, 256, 10], dropout=options.get("dropout", 0.0))
    penalty = None
    if options.get("l1") or options.get("l2"):
        penalty = regularizers.penalty(l1_coef=options.get("l1", 0.0), l2_coef=options.get("l2", 0.0))
    aug = augment.default((batch_size, *train[0].shape[1:])) if options.get("augment") else None
    result = fit(model, softmax_cross_entropy, jdl.optim.sgd(learning_rate), train, val, test_data=test, epochs=epochs,
                 batch_size=batch_size, seed=seed, progress=False, penalty=penalty, augment=aug,
                 early_stopping_patience=options.get("patience"))
    ts = result.train_state
    eval_step = make_eval_step(model, softmax_cross_entropy)
    tr = evaluate(eval_step, ts.params, ts.state, *train)
    va = evaluate(eval_step, ts.params, ts.state, *val)
    return {"train_accuracy": tr["accuracy"], "val_accuracy": va["accuracy"],
            "train_loss": tr["loss"], "val_loss": va["loss"],
            "gap": tr["accuracy"] - va["accuracy"], "loss_gap": va["loss"] - tr["loss"],
            "test_accuracy": result.test["accuracy"], "test_loss": result.test["loss"],
            "epochs_run": len(result.history),
            "val_loss_curve": [h["validation_loss"] for h in result.history],
            "w1": np.asarray(jax.device_get(ts.params["1_dense"]["w"])).ravel()}


def near_zero_fraction(w: np.ndarray, tol: float = 1e-2) -> float:
    """Share of weights with |w| < tol."""
    return float(np.mean(np.abs(w) < tol))


def plot(results: dict, weights: dict, curves: dict, workdir: str) -> list[str]:
    from matplotlib.figure import Figure

    from experiments.common import save_figure

    names = list(results)
    paths = []
    fig = Figure(figsize=(8, 3.6))
    ax = fig.subplots()
    pos = np.arange(len(names))
    for shift, key, label in ((-0.2, "train_accuracy", "train"), (0.2, "val_accuracy", "validation")):
        means = [results[n][key]["mean"] for n in names]
        stds = [results[n][key]["std"] for n in names]
        ax.bar(pos + shift, means, 0.4, yerr=stds, label=label)
    for i, n in enumerate(names):
        ax.text(i, 1.005, f"gap {results[n]['gap']['mean']:.3f}", ha="center", fontsize=7)
    ax.set_xticks(pos, names, fontsize=8)
    ax.set_ylim(0.75, 1.03)
    ax.set_ylabel("accuracy (eval mode)")
    ax.set_title(f"MLP on {N_TRAIN} digits: train vs validation")
    ax.legend(loc="lower right")
    paths.append(save_figure(fig, workdir, "regularization_gap.png", dpi=100))

    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    bins = np.linspace(-0.3, 0.3, 121)
    for n in ("none", "l2", "l1"):
        if n in weights:
            ax.hist(weights[n], bins=bins, histtype="step", label=f"{n}: {near_zero_fraction(weights[n]):.0%} |w|<0.01")
    ax.set_yscale("log")
    ax.set_xlabel("first-layer weight")
    ax.set_title("L1 makes weights sparse, L2 shrinks them all")
    ax.legend(fontsize=8)
    paths.append(save_figure(fig, workdir, "regularization_weights.png", dpi=100))

    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    for n, curve in curves.items():
        ax.plot(np.arange(1, len(curve) + 1), curve, label=n)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    paths.append(save_figure(fig, workdir, "regularization_curves.png", dpi=100))
    return paths


def run(workdir: str, quick: bool = False, seed: int = 0, epochs: int | None = None,
        seeds: int | None = None, configs: str | None = None) -> dict:
    """The configurations ``configs`` (comma-separated names of ``CONFIGS``; all by default) on
    ``seeds`` seeds (3; 1 with ``quick``) for ``epochs`` epochs (200; 20 with ``quick``).
    Returns and writes {config: {metric: {mean, std, runs}}}, the near-zero weight fractions
    and the plots."""
    from experiments.common import write_results

    epochs = epochs or (20 if quick else 200)
    seeds = seeds or (1 if quick else 3)
    names = configs.split(",") if configs else list(CONFIGS)
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise ValueError(f"regularization: unknown configs {unknown}; known: {', '.join(CONFIGS)}")
    os.makedirs(workdir, exist_ok=True)
    test = data_test()
    results: dict = {}
    weights: dict = {}
    curves: dict = {}
    for name in names:
        options = CONFIGS[name]
        runs = []
        for s in range(seed, seed + seeds):
            train, val = small_digits(s)
            runs.append(train_config(options, train, val, test, seed=s, epochs=epochs))
        weights[name] = runs[0].pop("w1")
        curves[name] = runs[0]["val_loss_curve"]
        for r in runs[1:]:
            r.pop("w1")
        metrics = ("train_accuracy", "val_accuracy", "train_loss", "val_loss", "gap", "loss_gap", "test_accuracy",
                   "test_loss", "epochs_run")
        results[name] = {m: {"mean": float(np.mean([r[m] for r in runs])), "std": float(np.std([r[m] for r in runs])),
                             "runs": [r[m] for r in runs]} for m in metrics}
        results[name]["near_zero_w1"] = near_zero_fraction(weights[name])
    out = {"configs": results, "options": CONFIGS, "n_train": N_TRAIN, "epochs": epochs, "seeds": seeds,
           "plots": [os.path.basename(p) for p in plot(results, weights, curves, workdir)]}
    write_results(workdir, out)
    return out


if __name__ == "__main__":
    from absl import flags

    from experiments import common

    flags.DEFINE_integer("epochs", None, "Epochs per run (default 200, 20 with --quick).")
    flags.DEFINE_integer("seeds", None, "Seeds per configuration (default 3, 1 with --quick).")
    flags.DEFINE_string("configs", None, f"Comma-separated subset of {', '.join(CONFIGS)}.")
    common.main(run, "regularization")
