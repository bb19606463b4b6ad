"""Normalization: a deep MLP and a small CNN trained without normalization and with BatchNorm,
LayerNorm and GroupNorm, at several learning rates; and BatchNorm's train/eval difference.

* deep MLP on the 8×8 digits: 8 hidden layers of 64 ReLU units, each Dense → norm → ReLU;
* small CNN: Conv3-16 → norm → ReLU → MaxPool2 → Conv3-32 → norm → ReLU → global average pool
  → Dense 10. For the CNN, "layer" norm is GroupNorm(1) (statistics over H, W and C of each
  example, the usual LayerNorm of a convolutional network); "group" is GroupNorm(8).

All runs use SGD (no momentum), batch 32, on the 1,437 training digits, evaluated on the 360
test digits after every epoch. For the BatchNorm runs a callback also measures the test set
in *training* mode (normalized with the test batch's own statistics) next to evaluation mode
(the running averages, momentum 0.99): early in training the running averages lag behind.

    python -m experiments.normalization --workdir=runs/normalization [--quick]
"""

from __future__ import annotations

import math
import os
from typing import Callable

import jax
import numpy as np

NORMS = ("none", "batch", "layer", "group")


def norm_layer(name: str, conv: bool) -> Callable | None:
    """A factory for the norm layer called ``name`` (None for 'none')."""
    from jdl import nn

    if name == "none":
        return None
    if name == "batch":
        return nn.BatchNorm
    if name == "layer":
        return (lambda: nn.GroupNorm(1)) if conv else nn.LayerNorm
    return lambda: nn.GroupNorm(8)


def deep_mlp(norm: str, depth: int = 8, width: int = 64):
    import jdl

    return jdl.models.mlp([width] * depth + [10], norm=norm_layer(norm, conv=False))


def small_cnn(norm: str):
    from jdl import nn

    make = norm_layer(norm, conv=True)
    layers: list = []
    for filters in (16, 32):
        layers.append(nn.Conv2D(filters, 3, use_bias=norm != "batch"))
        if make is not None:
            layers.append(make())
        layers.append(nn.relu)
        if filters == 16:
            layers.append(nn.MaxPool2D(2))
    return nn.serial(*layers, nn.GlobalAvgPool(), nn.Dense(10))


MODELS = {"mlp": deep_mlp, "cnn": small_cnn}


def train_mode_metrics(apply_train, params, state, x, y) -> dict:
    """Loss and accuracy on (x, y) in training mode (``apply_train(params, state, x)``, jitted
    once per run): BatchNorm uses the batch's own statistics (the whole set as one batch), and
    the state it returns is discarded."""
    from jdl.losses import softmax_cross_entropy

    logits, _ = apply_train(params, state, x)
    return {"loss": float(softmax_cross_entropy(logits, y)),
            "accuracy": float(np.mean(np.argmax(np.asarray(logits), -1) == y))}


def train_run(model_name: str, norm: str, lr: float, train, test, *, epochs: int, seed: int) -> dict:
    import jdl
    from jdl.losses import softmax_cross_entropy
    from jdl.train import fit

    model = MODELS[model_name](norm)
    bn_track: list = []
    apply_train = jax.jit(lambda p, s, x: model.apply(p, s, x, train=True))

    def track(epoch, record, ts):
        if norm == "batch":
            bn_track.append(train_mode_metrics(apply_train, ts.params, ts.state, *test))

    result = fit(model, softmax_cross_entropy, jdl.optim.sgd(lr), train, test_data=test, test_every_epoch=True, epochs=epochs,
                 batch_size=32, seed=seed, progress=False, on_nonfinite=None, tensorboard=False,
                 callbacks=[track])
    hist = result.history
    clean = lambda v: float(v) if math.isfinite(v) else None  # NaN (diverged) → null in JSON
    out = {"train_loss": [clean(h["train_loss"]) for h in hist],
           "test_loss": [clean(h["test_loss"]) for h in hist],
           "test_accuracy": [clean(h["test_accuracy"]) for h in hist]}
    out["final_test_accuracy"] = out["test_accuracy"][-1]
    if bn_track:
        out["bn_train_mode_test_accuracy"] = [m["accuracy"] for m in bn_track]
        out["bn_train_mode_test_loss"] = [clean(m["loss"]) for m in bn_track]
    return out


def plot(results: dict, learning_rates: list[float], workdir: str) -> list[str]:
    from matplotlib.figure import Figure

    from experiments.common import save_figure

    paths = []
    for model_name, by_norm in results.items():
        fig = Figure(figsize=(4 * len(learning_rates), 3.4))
        axes = fig.subplots(1, len(learning_rates), squeeze=False)
        for ax, lr in zip(axes[0], learning_rates):
            for norm in NORMS:
                run = by_norm.get(norm, {}).get(str(lr))
                if run:
                    loss = [np.nan if v is None else v for v in run["train_loss"]]
                    ax.plot(np.arange(1, len(loss) + 1), loss, label=norm)
            ax.set_title(f"{model_name}, SGD η = {lr}")
            ax.set_xlabel("epoch")
            ax.set_ylabel("training loss")
            ax.set_yscale("log")
            ax.legend(fontsize=8)
        paths.append(save_figure(fig, workdir, f"normalization_{model_name}.png", dpi=100))

    fig = Figure(figsize=(4.5 * len(results), 3.4))
    axes = fig.subplots(1, len(results), squeeze=False)
    for ax, (model_name, by_norm) in zip(axes[0], results.items()):
        for lr in learning_rates:
            run = by_norm.get("batch", {}).get(str(lr))
            if run and "bn_train_mode_test_accuracy" in run:
                epochs = np.arange(1, len(run["test_accuracy"]) + 1)
                line, = ax.plot(epochs, run["test_accuracy"], label=f"η={lr} eval (running stats)")
                ax.plot(epochs, run["bn_train_mode_test_accuracy"], "--", color=line.get_color(),
                        label=f"η={lr} train mode (batch stats)")
        ax.set_title(f"{model_name} + BatchNorm: test accuracy")
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    paths.append(save_figure(fig, workdir, "normalization_bn_train_eval.png", dpi=100))
    return paths


def run(workdir: str, quick: bool = False, seed: int = 0, epochs: int | None = None,
        models: str = "mlp,cnn", learning_rates: str = "0.01,0.1,0.5", norms: str | None = None) -> dict:
    """Every model × norm × learning rate for ``epochs`` epochs (15; 2 with ``quick``).
    Returns and writes {model: {norm: {lr: curves and final accuracy}}} and the plots."""
    from experiments.common import write_results
    from jdl import data

    epochs = epochs or (2 if quick else 15)
    lrs = [float(v) for v in learning_rates.split(",")]
    norm_names = norms.split(",") if norms else list(NORMS)
    model_names = models.split(",")
    bad = [m for m in model_names if m not in MODELS] + [n for n in norm_names if n not in NORMS]
    if bad:
        raise ValueError(f"normalization: unknown {bad}; models {list(MODELS)}, norms {list(NORMS)}")
    # the published 1,437 / 360 split docs/normalization.md reports on; every run is shown, none chosen
    train, test = data.load("digits", "train", validation_fraction=0), data.load("digits", "test")
    os.makedirs(workdir, exist_ok=True)
    results: dict = {}
    for model_name in model_names:
        results[model_name] = {}
        for norm in norm_names:
            results[model_name][norm] = {str(lr): train_run(model_name, norm, lr, train, test, epochs=epochs, seed=seed)
                                         for lr in lrs}
    out = {"results": results, "epochs": epochs, "learning_rates": lrs, "seed": seed,
           "plots": [os.path.basename(p) for p in plot(results, lrs, workdir)]}
    write_results(workdir, out)
    return out


if __name__ == "__main__":
    from absl import flags

    from experiments import common

    flags.DEFINE_integer("epochs", None, "Epochs per run (default 15, 2 with --quick).")
    flags.DEFINE_string("models", "mlp,cnn", "Comma-separated models: mlp, cnn.")
    flags.DEFINE_string("learning_rates", "0.01,0.1,0.5", "Comma-separated SGD learning rates.")
    flags.DEFINE_string("norms", None, f"Comma-separated subset of {', '.join(NORMS)}.")
    common.main(run, "normalization")
