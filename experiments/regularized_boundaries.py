"""Decision boundaries of an over-sized MLP on a few noisy moons, without and with L2, dropout and
early stopping (the experiment decision_boundaries.py has no regularization; this one keeps its
plotting function).

60 training points (moons with extra Gaussian jitter σ = 0.25 on x, so the classes overlap) are
far too few for a 2 → 256 → 256 → 2 ReLU network: unregularized, it draws islands around single
points. L2 (λ/2‖w‖², λ = 1e-2), dropout (p = 0.5) and early stopping (patience 30 epochs on the
validation loss, best epoch restored) each smooth the boundary. Decisions use the 80 validation
points only; the 200 test points are scored once, at the end.

    python -m experiments.regularized_boundaries --workdir=runs/regularized_boundaries [--quick]
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

import jdl

CONFIGS = {"none": {}, "l2": {"l2": 1e-2}, "dropout": {"dropout": 0.5}, "early_stopping": {"patience": 30}}


def noisy_moons(seed: int = 0, n_train: int = 60, jitter: float = 0.25):
    """Train (n_train seeded points of the moons training split), validation and test splits,
    each x jittered by N(0, jitter²) (seeded), so the two classes overlap."""
    rng = np.random.default_rng(seed)
    (x, y), val, test = (jdl.data.load("moons", s) for s in ("train", "validation", "test"))
    idx = rng.choice(len(x), n_train, replace=False)
    out = []
    for xs, ys in ((x[idx], y[idx]), val, test):
        out.append(((xs + jitter * rng.normal(size=xs.shape)).astype(np.float32), ys))
    return out


def train_config(options: dict, train, val, test, epochs: int, seed: int) -> dict:
    """Fit the 256-256 ReLU MLP with ``options`` (l2, dropout, patience) by jdl.train.fit (Adam
    3e-3, batches of 20); returns a predict function, train/test accuracy and epochs run."""
    model = jdl.models.mlp([256, 256, 2], dropout=options.get("dropout", 0.0))
    penalty = jdl.regularizers.penalty(l2_coef=options["l2"]) if "l2" in options else None
    result = jdl.train.fit(model, jdl.losses.softmax_cross_entropy, jdl.optim.adam(3e-3), train, val, test_data=test,
                           epochs=epochs, batch_size=20, seed=seed, progress=False, tensorboard=False,
                           penalty=penalty, early_stopping_patience=options.get("patience"))
    params, state = result.train_state.params, result.train_state.state
    predict = jax.jit(lambda g: jnp.argmax(model.apply(params, state, g)[0], -1))
    return {"predict": predict, "train_accuracy": float(np.mean(np.asarray(predict(train[0])) == train[1])),
            "test_accuracy": float(result.test["accuracy"]), "epochs_run": len(result.history)}


def run(workdir: str, quick: bool = False, seed: int = 0) -> dict:
    """Every configuration of ``CONFIGS`` for 400 epochs (20 with ``quick``); writes
    results.json and regularized_boundaries.png."""
    from matplotlib.figure import Figure

    from experiments.common import write_results
    from experiments.decision_boundaries import plot_decision_regions

    train, val, test = noisy_moons(seed)
    epochs = 20 if quick else 400
    fig = Figure(figsize=(2.6 * len(CONFIGS), 2.8))
    axes = fig.subplots(1, len(CONFIGS))
    results: dict = {"epochs": epochs, "n_train": len(train[0]), "options": CONFIGS, "configs": {}}
    for ax, (name, options) in zip(axes, CONFIGS.items()):
        r = train_config(options, train, val, test, epochs, seed)
        plot_decision_regions(ax, r.pop("predict"), *train,
                              f"{name}\ntrain {r['train_accuracy']:.2f}, test {r['test_accuracy']:.2f}")
        results["configs"][name] = r
    os.makedirs(workdir, exist_ok=True)
    fig.tight_layout()
    fig.savefig(os.path.join(workdir, "regularized_boundaries.png"), dpi=90)
    write_results(workdir, results)
    return results


if __name__ == "__main__":
    from experiments import common

    common.main(run, "regularized_boundaries")
