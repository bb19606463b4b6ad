"""Learning from noisy labels on the digits: symmetric label noise on the training set, plain
cross-entropy vs the generalized cross-entropy (``jdl.losses.generalized_cross_entropy``,
Zhang & Sabuncu 2018), with early stopping on a clean or on an equally noisy validation split.

Symmetric noise of rate η: each label is, with probability η, replaced by one of the other
K − 1 = 9 classes drawn uniformly (``corrupt``). The test digits stay clean. A network trained
long enough on noisy labels memorizes them and its test accuracy falls; early stopping keeps the
epoch of best validation accuracy — which needs a validation split whose accuracy still ranks the
models, and the experiment asks whether a noisy one (the realistic case) does. GCE,
ℓ_q = (1 − p_y^q)/q, weights each example's cross-entropy gradient by p_y^q, so examples the
model finds implausible (mostly the mislabelled ones) pull less.

Each fit runs the whole schedule (``early_stopping_patience`` = epochs: nothing stops it, the best
validation epoch's params come back), so one fit gives both the early-stopped test accuracy
(measured once) and, from its per-epoch test curve (``test_every_epoch``, for plots only), the
test accuracy of the last epoch — training without early stopping.

    jdl experiment noisy_labels [--quick]
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from experiments.paradigms_common import digits_splits, mean_std, train_classifier

K = 10
Q = 0.7


@dataclasses.dataclass(frozen=True)
class Config:
    """Noise rates, seeds, Adam steps per fit, and the validation splits early stopping uses."""

    rates: tuple[float, ...] = (0.0, 0.2, 0.4)
    seeds: int = 3
    steps: int = 2400
    validations: tuple[str, ...] = ("clean", "noisy")


QUICK = Config(rates=(0.4,), seeds=1, steps=400, validations=("clean",))


def corrupt(y: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """Symmetric label noise: y'_i = y_i with probability 1 − rate, else uniform over the other
    K − 1 classes. Shapes: y (N,) int → (N,) int."""
    rng = np.random.default_rng(seed)
    flip = rng.random(len(y)) < rate
    other = (y + rng.integers(1, K, len(y))) % K  # never y itself, uniform over the rest
    return np.where(flip, other, y).astype(y.dtype)


def losses() -> dict:
    """The two losses compared: cross-entropy and GCE with q = 0.7 (the paper's choice)."""
    from jdl.losses import generalized_cross_entropy, softmax_cross_entropy

    return {"ce": softmax_cross_entropy, "gce": functools.partial(generalized_cross_entropy, q=Q)}


def one_fit(d: dict, rate: float, loss: str, validation: str, seed: int, steps: int) -> dict:
    """Train on labels with noise ``rate`` under ``loss``, early-stopping on the 'clean' or 'noisy'
    validation split; test accuracy at the chosen epoch and at the last."""
    x, y = d["train"]
    y_noisy = corrupt(y, rate, seed)
    xv, yv = d["validation"]
    val = (xv, yv) if validation == "clean" else (xv, corrupt(yv, rate, seed + 10_000))
    epochs = -(-steps // (len(x) // 32))
    result = train_classifier((x, y_noisy), val, d["test"], seed=seed, steps=steps, loss=losses()[loss],
                              patience=epochs, test_every_epoch=True)
    h = result.history
    best = int(np.argmax([r["validation_accuracy"] for r in h]))
    return {"early_stopped_test": result.test["accuracy"], "last_epoch_test": h[-1]["test_accuracy"],
            "best_epoch": best + 1, "epochs": len(h), "actual_noise": float(np.mean(y_noisy != y)),
            "test_curve": [r["test_accuracy"] for r in h], "validation_curve": [r["validation_accuracy"] for r in h]}


def run(workdir: str, quick: bool = False, seed: int = 0) -> dict:
    from experiments.common import write_results

    cfg = QUICK if quick else Config()
    d = digits_splits()
    table = {}
    for rate in cfg.rates:
        for loss in ("ce", "gce"):
            for validation in cfg.validations if rate else ("clean",):
                runs = [one_fit(d, rate, loss, validation, seed + s, cfg.steps) for s in range(cfg.seeds)]
                table[f"noise={rate}/{loss}/{validation}"] = {
                    "rate": rate, "loss": loss, "validation": validation,
                    **{k: mean_std([r[k] for r in runs]) for k in ("early_stopped_test", "last_epoch_test", "best_epoch")},
                    "runs": runs}
    results = {"config": dataclasses.asdict(cfg), "q": Q, "table": table}
    results["plots"] = plot(table, workdir)
    write_results(workdir, results)
    return results


def plot(table: dict, workdir: str) -> list[str]:
    """Test accuracy per epoch (seed 0, clean validation) for each noise rate and loss."""
    from matplotlib.figure import Figure

    from experiments.common import save_figure

    fig = Figure(figsize=(6, 3.8))
    ax = fig.add_subplot(1, 1, 1)
    for name, row in table.items():
        if row["validation"] == "clean":
            r = row["runs"][0]
            line, = ax.plot(np.arange(1, r["epochs"] + 1), r["test_curve"], "-" if row["loss"] == "ce" else "--",
                            label=f"η={row['rate']}, {row['loss']}")
            ax.plot(r["best_epoch"], r["test_curve"][r["best_epoch"] - 1], "o", color=line.get_color())
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (clean labels)")
    ax.set_title("Symmetric label noise: CE vs GCE (dots: early-stopping epoch)")
    ax.legend(fontsize=7)
    return [save_figure(fig, workdir, "noisy_labels.png", dpi=100)]


if __name__ == "__main__":
    from experiments.common import main

    main(run, "noisy_labels")
