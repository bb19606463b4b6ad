"""Dying ReLUs: after a too-large learning rate, many ReLU units have a negative pre-activation
on every training input, so their gradient is 0 and they never come back; leaky ReLU and ELU
keep a gradient for z < 0, so their units cannot die (measured here: at the rates that kill a
ReLU network they diverge instead; see docs/generalization.md).

A unit of a hidden layer is *dead* when z = a·w + b ≤ 0 for all training inputs (ReLU outputs 0
and ReLU′(z) = 0 there for every example). The same MLP 2 → 64 → 64 → 2 (He init) is trained
with plain SGD (batches of 32, 10 epochs of moons) at growing learning rates, once per
activation; the experiment counts dead units after training and reports the test accuracy.
Leaky ReLU (slope 0.01) and ELU units can also sit at z ≤ 0 everywhere, but they still get a
gradient there, so the same count measures how many units are stuck rather than dead.

    python -m experiments.dying_relu --workdir=runs/dying_relu [--quick]
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

import jdl

ACTIVATIONS = {"relu": jdl.nn.relu, "leaky_relu": jdl.nn.leaky_relu, "elu": jdl.nn.elu}


def pre_activations(params, x: np.ndarray, activation) -> list[np.ndarray]:
    """z_l = a_{l−1}W_l + b_l of every hidden Dense layer of a jdl.models.mlp (a_0 = x,
    a_l = φ(z_l)), computed from the params dict. Shapes: x (N, d) → [(N, width_l), …]."""
    dense = [k for k in sorted(params, key=lambda k: int(k.split("_")[0])) if "w" in params[k]]
    a, zs = jnp.asarray(x), []
    for k in dense[:-1]:
        z = a @ params[k]["w"] + params[k]["b"][None, :]  # (N, width)
        zs.append(np.asarray(z))
        a = activation(z)
    return zs


def dead_fraction(zs: list[np.ndarray]) -> float:
    """Share of hidden units with z ≤ 0 on every input (all columns of all layers)."""
    dead = np.concatenate([np.all(z <= 0, axis=0) for z in zs])
    return float(dead.mean())


def train_one(activation, lr: float, epochs: int, seed: int, train, test) -> dict:
    """SGD(lr) on the MLP with ``activation``; returns the dead fraction before and after, the
    test accuracy and ``diverged`` (1.0 when a parameter went NaN/±∞: NaN ≤ 0 is false, so such a
    run counts no dead units and its dead fraction means nothing)."""
    model = jdl.models.mlp([64, 64, 2], activation=activation, w_init=jdl.init.he_normal)
    before = jdl.train.init_train_state(model, jdl.optim.sgd(lr), train[0][:1], seed=seed).params
    result = jdl.train.fit(model, jdl.losses.softmax_cross_entropy, jdl.optim.sgd(lr), train, test_data=test,
                           epochs=epochs, batch_size=32, seed=seed, progress=False, tensorboard=False,
                           on_nonfinite=None)
    after = result.train_state.params
    return {"dead_before": dead_fraction(pre_activations(before, train[0], activation)),
            "dead_after": dead_fraction(pre_activations(after, train[0], activation)),
            "test_accuracy": float(result.test["accuracy"]),
            "diverged": float(not all(np.isfinite(np.asarray(v)).all() for v in jax.tree.leaves(after)))}


def run(workdir: str, quick: bool = False, seed: int = 0) -> dict:
    """ReLU, leaky ReLU and ELU at learning rates 0.01 … 3 (two with ``quick``), 3 seeds (1 with
    ``quick``); writes results.json and dying_relu.png."""
    from matplotlib.figure import Figure

    from experiments.common import write_results

    train, test = jdl.data.load("moons", "train"), jdl.data.load("moons", "test")
    lrs = (0.01, 1.0) if quick else (0.01, 0.1, 0.3, 1.0, 3.0)
    seeds = range(seed, seed + (1 if quick else 3))
    epochs = 2 if quick else 10
    results: dict = {"learning_rates": list(lrs), "epochs": epochs, "seeds": len(seeds), "runs": {}}
    for name, act in ACTIVATIONS.items():
        runs = {lr: [train_one(act, lr, epochs, s, train, test) for s in seeds] for lr in lrs}
        results["runs"][name] = {str(lr): {k: float(np.mean([r[k] for r in rs])) for k in rs[0]}
                                 for lr, rs in runs.items()}
    fig = Figure(figsize=(9, 3.5))
    ax0, ax1 = fig.subplots(1, 2)
    for name, per_lr in results["runs"].items():
        ax0.plot(lrs, [per_lr[str(lr)]["dead_after"] for lr in lrs], "-o", label=name)
        ax1.plot(lrs, [per_lr[str(lr)]["test_accuracy"] for lr in lrs], "-o", label=name)
    for ax, label in ((ax0, "share of hidden units dead (z ≤ 0 on all inputs)"), (ax1, "test accuracy")):
        ax.set_xscale("log")
        ax.set_xlabel("SGD learning rate")
        ax.set_ylabel(label, fontsize=8)
        ax.legend(fontsize=8)
    os.makedirs(workdir, exist_ok=True)
    fig.tight_layout()
    fig.savefig(os.path.join(workdir, "dying_relu.png"), dpi=90)
    write_results(workdir, results)
    return results


if __name__ == "__main__":
    from experiments import common

    common.main(run, "dying_relu")
