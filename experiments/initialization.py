"""Weight initialization: the symmetry problem, small random weights, Xavier and He.

MLPs of ``depth`` hidden layers (tanh or ReLU) on the digits data, their weights drawn by

* ``zeros``: w = 0 — every hidden unit computes the same thing and gets the same gradient,
  so the units of a layer stay identical however long one trains (the symmetry problem);
* ``constant``: w = 0.05 — the same problem with non-zero weights: symmetry, not zero, is
  the trouble;
* ``small_uniform`` U(−0.05, 0.05) and ``small_normal`` N(0, 0.01²): symmetry broken, but the
  signal shrinks layer after layer;
* ``xavier``: N(0, 2/(fan_in + fan_out)); ``he``: N(0, 2/fan_in) (for ReLU).

Reported: the mean and standard deviation of every hidden layer's activations at
initialization, the largest difference between two units of a hidden layer after training
(0 means the symmetry was never broken), and the training curves.

    python -m experiments.initialization --workdir=runs/initialization [--quick]
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np

import jdl

INITS = {
    "zeros": jdl.init.zeros,
    "constant": jdl.init.constant(0.05),
    "small_uniform": jdl.init.uniform(0.05),
    "small_normal": jdl.init.normal(0.01),
    "xavier": jdl.init.xavier_normal,
    "he": jdl.init.he_normal,
}
ACTIVATIONS = {"tanh": jdl.nn.tanh, "relu": jdl.nn.relu}


def network(activation, w_init, depth: int, width: int, n_out: int = 10) -> jdl.Module:
    """Flatten, then ``depth`` × [Dense(width, w_init), φ], then Dense(n_out, w_init)."""
    layers: list = [jdl.nn.Flatten()]
    for _ in range(depth):
        layers += [jdl.nn.Dense(width, w_init=w_init), activation]
    return jdl.nn.serial(*layers, jdl.nn.Dense(n_out, w_init=w_init))


def hidden_activations(model: jdl.Module, params: dict, x: jax.Array) -> list[jax.Array]:
    """The output of every activation layer, applying the children of a ``serial`` one by one.
    Shapes: x (B, ...) → a list of (B, width)."""
    outs, h = [], x
    for i, child in enumerate(model.children):
        h, _ = child.apply(params[f"{i}_{child.name}"], {}, h)
        if child.name in ACTIVATIONS:
            outs.append(h)
    return outs


def unit_spread(params: dict) -> float:
    """max over hidden layers l, units j, inputs i of |W_l[i, j] − W_l[i, 0]| (and of the biases):
    0 when every unit of every hidden layer has the same weights as its first unit (up to float
    rounding: a matmul kernel may sum identical columns in a different order)."""
    dense = [params[k] for k in sorted(params, key=lambda k: int(k.split("_")[0])) if "w" in params[k]]
    spread = 0.0
    for layer in dense[:-1]:  # the output layer's units differ by design (one per class)
        spread = max(spread, float(jnp.max(jnp.abs(layer["w"] - layer["w"][:, :1]))),
                     float(jnp.max(jnp.abs(layer["b"] - layer["b"][:1]))))
    return spread


def run(workdir: str, quick: bool = False, seed: int = 0, depth: int = 5, width: int = 64) -> dict:
    """Train every (activation, init) pair; write results.json and initialization.png."""
    from matplotlib.figure import Figure

    epochs, lr = (1, 0.1) if quick else (30, 0.1)
    # the published split docs/initialization.md reports on; nothing here is chosen on the test set
    (x, y), (xt, yt) = jdl.data.load("digits", "train", validation_fraction=0), jdl.data.load("digits", "test")
    mean, std = float(x.mean()), float(x.std())
    x, xt = (x - mean) / std, (xt - mean) / std  # standardized inputs: mean 0, variance 1
    results: dict = {"depth": depth, "width": width, "epochs": epochs, "lr": lr, "runs": {}}
    for act_name, act in ACTIVATIONS.items():
        for init_name, w_init in INITS.items():
            model = network(act, w_init, depth, width)
            params, _ = model.init(jax.random.key(seed), jnp.asarray(x[:256]))
            acts = hidden_activations(model, params, jnp.asarray(x[:256]))
            fitted = jdl.train.fit(model, jdl.losses.softmax_cross_entropy, jdl.optim.sgd(lr), (x, y), test_data=(xt, yt),
                                   test_every_epoch=True, epochs=epochs, batch_size=64, seed=seed, progress=False)  # per-epoch test curves, for plots; nothing is chosen on them
            hist = fitted.history
            results["runs"][f"{act_name}/{init_name}"] = {
                "act_mean": [float(jnp.mean(a)) for a in acts],
                "act_std": [float(jnp.std(a)) for a in acts],
                "unit_spread_after_training": unit_spread(fitted.train_state.params),
                "train_loss": [h["train_loss"] for h in hist],
                "test_accuracy": [h["test_accuracy"] for h in hist],
                "final_test_accuracy": hist[-1]["test_accuracy"],
            }

    fig = Figure(figsize=(11, 7.5))
    axes = fig.subplots(2, 2)
    for c, act_name in enumerate(ACTIVATIONS):
        for init_name in INITS:
            r = results["runs"][f"{act_name}/{init_name}"]
            std = np.maximum(r["act_std"], 1e-12)  # zeros give std 0: drawn at the floor
            axes[0, c].semilogy(np.arange(1, depth + 1), std, marker="o", label=init_name)
            axes[1, c].plot(np.arange(1, epochs + 1), r["test_accuracy"], marker=".", label=init_name)
        axes[0, c].set(xlabel="hidden layer", ylabel="std of activations at init (floor 1e-12)",
                       title=f"{act_name}: activations at initialization")
        axes[1, c].set(xlabel="epoch", ylabel="test accuracy", title=f"{act_name}: training (SGD, lr {lr})",
                       ylim=(0, 1))
        axes[0, c].legend(fontsize=8)
        axes[1, c].legend(fontsize=8)
    from experiments import common

    common.save_figure(fig, workdir, "initialization.png")
    common.write_results(workdir, results)
    return results


if __name__ == "__main__":
    from experiments import common

    common.main(run, "initialization")
