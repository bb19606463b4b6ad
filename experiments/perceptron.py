"""The perceptron learns AND and OR and never XOR; an MLP with one hidden layer learns XOR.

Rosenblatt's rule (``jdl.models.classic.perceptron_train``) runs on the four points of each
truth table; a mistake-free epoch means it has converged. On XOR no line separates the classes,
so every epoch keeps making mistakes. A 2-8-2 tanh MLP trained by gradient descent fits XOR.
The same two models are also run on a noisy XOR cloud of 800 points.

    python -m experiments.perceptron --workdir=runs/perceptron [--quick]
"""

from __future__ import annotations


import jax.numpy as jnp
import numpy as np

import jdl
from experiments.decision_boundaries import plot_decision_regions, train_mlp
from jdl.models import classic

X01 = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
TRUTH = {"and": np.array([0, 0, 0, 1]), "or": np.array([0, 1, 1, 1]), "xor": np.array([0, 1, 1, 0])}


def _perceptron(x: np.ndarray, y: np.ndarray, epochs: int) -> dict:
    params, mistakes = classic.perceptron_train(x, y, epochs=epochs)
    mistakes = np.asarray(mistakes)
    clean = np.flatnonzero(mistakes == 0)
    return {"params": params, "mistakes": mistakes.tolist(),
            "accuracy": float(np.mean(np.asarray(classic.perceptron_predict(params, x)) == y)),
            "converged_epoch": int(clean[0]) + 1 if clean.size else None}


def run(workdir: str, quick: bool = False, seed: int = 0) -> dict:
    """Perceptron on AND, OR, XOR (and noisy XOR); MLP on XOR; writes results.json,
    perceptron_boundaries.png and perceptron_mistakes.png."""
    from matplotlib.figure import Figure

    epochs = 20 if quick else 100
    results: dict = {"epochs": epochs, "perceptron": {}, "mlp": {}}
    runs = {gate: _perceptron(X01, TRUTH[gate], epochs) for gate in TRUTH}
    xn, yn = jdl.data.load("xor", "train", validation_fraction=0)  # all 800 points: no model selection here
    runs["noisy_xor"] = _perceptron(xn, yn, epochs)
    for name, r in runs.items():
        results["perceptron"][name] = {k: r[k] for k in ("accuracy", "converged_epoch", "mistakes")}

    mlp_steps = 300 if quick else 2000
    mlp_xor, loss = train_mlp(X01, TRUTH["xor"], 8, mlp_steps, lr=0.5, seed=seed)
    mlp_noisy, loss_noisy = train_mlp(xn, yn, 8, mlp_steps, lr=0.5, seed=seed)
    results["mlp"] = {
        "xor": {"accuracy": float(np.mean(np.asarray(mlp_xor(X01)) == TRUTH["xor"])), "train_loss": loss},
        "noisy_xor": {"accuracy": float(np.mean(np.asarray(mlp_noisy(xn)) == yn)), "train_loss": loss_noisy},
        "steps": mlp_steps, "hidden": 8}

    fig = Figure(figsize=(11, 5.6))
    axes = fig.subplots(2, 4)
    for ax, name in zip(axes[0], ["and", "or", "xor"]):
        p = runs[name]["params"]
        predict = lambda g, p=p: classic.perceptron_predict(p, jnp.asarray(g))
        plot_decision_regions(ax, predict, X01, TRUTH[name], f"perceptron, {name.upper()}: "
                              f"acc {runs[name]['accuracy']:.2f}", margin=0.5)
    plot_decision_regions(axes[0, 3], mlp_xor, X01, TRUTH["xor"],
                          f"MLP 2-8-2, XOR: acc {results['mlp']['xor']['accuracy']:.2f}", margin=0.5)
    p = runs["noisy_xor"]["params"]
    plot_decision_regions(axes[1, 0], lambda g: classic.perceptron_predict(p, jnp.asarray(g)), xn, yn,
                          f"perceptron, noisy XOR: acc {runs['noisy_xor']['accuracy']:.2f}", margin=0.1)
    plot_decision_regions(axes[1, 1], mlp_noisy, xn, yn,
                          f"MLP, noisy XOR: acc {results['mlp']['noisy_xor']['accuracy']:.2f}", margin=0.1)
    ax = axes[1, 2]
    for name in ["and", "or", "xor"]:
        ax.plot(np.arange(1, epochs + 1), runs[name]["mistakes"], label=name.upper(), marker=".")
    ax.set(xlabel="epoch", ylabel="mistakes in the epoch (of 4)", title="Rosenblatt's rule")
    ax.legend()
    axes[1, 3].axis("off")
    from experiments import common

    common.save_figure(fig, workdir, "perceptron.png")
    common.write_results(workdir, results)
    return results


if __name__ == "__main__":
    from experiments import common

    common.main(run, "perceptron")
