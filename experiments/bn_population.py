"""BatchNorm's running averages against population statistics recomputed after training.

A deep MLP (4 hidden layers of 64 units, Dense → BatchNorm → ReLU, momentum 0.99 as in flax)
is trained with SGD + momentum on the 1,293 digits of the 'train' split. After every epoch the
360 test digits are evaluated twice in evaluation mode: with the running averages the layers
kept during training, and with the statistics ``jdl.train.recompute_batch_stats`` measures over
the whole training set for the current weights (momentum-free, exact). Early in training the
running averages still remember their initial values (mean 0, var 1) and earlier weights:
after k steps the initial value keeps a weight 0.99^k. The per-epoch test numbers are for the
plot only; nothing is chosen on them.

    python -m experiments.bn_population --workdir=runs/bn_population [--quick]
"""

from __future__ import annotations

import os

import numpy as np


def model():
    import jdl

    return jdl.models.mlp([64] * 4 + [10], norm=jdl.nn.BatchNorm)


def train_one(seed: int, epochs: int, batch_size: int, data: dict) -> dict:
    """Per-epoch test accuracy/loss with running and recomputed statistics, for one seed."""
    import jdl
    from jdl.train import evaluate, make_eval_step, recompute_batch_stats

    net = model()
    eval_step = make_eval_step(net, jdl.losses.softmax_cross_entropy)
    curves = {k: [] for k in ("running_accuracy", "population_accuracy", "running_loss", "population_loss",
                              "mean_gap")}

    def measure(epoch, record, ts):
        population = recompute_batch_stats(net, ts.params, ts.state, data["x_train"], batch_size=256)
        for name, state in (("running", ts.state), ("population", population)):
            m = evaluate(eval_step, ts.params, state, data["x_test"], data["y_test"])
            curves[f"{name}_accuracy"].append(m["accuracy"])
            curves[f"{name}_loss"].append(m["loss"])
        first = lambda s: next(v for k, v in sorted(s.items()) if "batchnorm" in k)["mean"]
        curves["mean_gap"].append(float(np.max(np.abs(np.asarray(first(ts.state)) - np.asarray(first(population))))))

    jdl.train.fit(net, jdl.losses.softmax_cross_entropy, jdl.optim.sgd(0.05, momentum=0.9),
                  (data["x_train"], data["y_train"]), epochs=epochs, batch_size=batch_size, seed=seed,
                  progress=False, callbacks=[measure], tensorboard=False)
    return curves


def run(workdir: str, quick: bool = False, seed: int = 0) -> dict:
    import jdl
    from experiments.common import write_results

    x_train, y_train = jdl.data.load("digits", "train")
    x_test, y_test = jdl.data.load("digits", "test")
    data = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    epochs, seeds, batch_size = (1, [seed], 64) if quick else (10, [seed, seed + 1, seed + 2], 64)
    runs = {str(s): train_one(s, epochs, batch_size, data) for s in seeds}
    mean = lambda key: np.mean([r[key] for r in runs.values()], axis=0).tolist()
    results = {"config": {"model": "mlp 64x4 + BatchNorm(momentum=0.99)", "optimizer": "sgd(0.05, momentum=0.9)",
                          "batch_size": batch_size, "epochs": epochs, "seeds": seeds,
                          "steps_per_epoch": len(x_train) // batch_size},
               "runs": runs,
               "mean": {k: mean(k) for k in next(iter(runs.values()))}}
    write_results(workdir, results)
    plot(results, workdir)
    return results


def plot(results: dict, workdir: str) -> str:
    from matplotlib.figure import Figure

    from experiments.common import save_figure

    fig = Figure(figsize=(8, 3.2))
    ax1, ax2 = fig.subplots(1, 2)
    epochs = np.arange(1, len(results["mean"]["running_accuracy"]) + 1)
    for name, style in (("running", "--o"), ("population", "-s")):
        ax1.plot(epochs, results["mean"][f"{name}_accuracy"], style, label=f"{name} statistics")
        ax2.plot(epochs, results["mean"][f"{name}_loss"], style, label=f"{name} statistics")
    ax1.set(xlabel="epoch", ylabel="test accuracy (eval mode)", title="BatchNorm statistics at test time")
    ax2.set(xlabel="epoch", ylabel="test loss", yscale="log")
    ax1.legend()
    return save_figure(fig, workdir, "bn_population.png")


if __name__ == "__main__":
    from experiments.common import main

    main(run, "bn_population")
