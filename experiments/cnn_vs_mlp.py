"""CNN vs MLP vs logistic regression on the 8×8 digits and on MNIST-1D.

Greydanus (2020) built MNIST-1D so that model classes separate clearly on a laptop: his table
gives about 32 % test accuracy for logistic regression, 68 % for an MLP and 94 % for a CNN. The
reason is translation: each MNIST-1D digit is shifted by up to 48 of 72 points, and only a
convolution (the same filter at every position) sees the same pattern wherever it is. On the
digits, which are centred, the MLP is already good and the CNN adds a little.

Models: logistic regression (softmax regression on the flattened input), the paper's MLP
(100-100 ReLU), and a CNN: on MNIST-1D the paper's (3 × Conv1D(25, 5, stride 2), ReLU, dense),
on digits LeNet-5 (adapted to 8×8) and a small CNN (CONV3-32, POOL, CONV3-64, POOL, FC-128);
on MNIST-1D also a GRU(64) that reads the 40 points as a sequence and classifies its last state
(the paper reports ~91 % for its bidirectional GRU of 6 units).
All train with Adam and the paper's MNIST-1D schedule (batch 100, lr 1e-2, about 6,000 steps)
or, on digits, batch 32, lr 1e-3. Besides the table, the run saves LeNet-5's first-layer filters.

    python -m experiments.cnn_vs_mlp --workdir=runs/cnn_vs_mlp [--quick]
"""

from __future__ import annotations

import os

import numpy as np

#: Greydanus 2020, table 1 (test accuracy on MNIST-1D).
PAPER = {"logistic": 0.32, "mlp": 0.68, "cnn": 0.94, "gru": 0.91}
#: hidden units of the GRU (MNIST-1D only: a sequence of 40 steps of 1 channel)
GRU_HIDDEN = 64
#: (batch size, learning rate, epochs, quick epochs) per data set
SETTINGS = {"digits": (32, 1e-3, 40, 3), "mnist1d": (100, 1e-2, 150, 3)}


def make_model(name: str, dataset: str, input_shape: tuple, n_classes: int = 10):
    """The model ``name`` ('logistic', 'mlp', 'cnn', 'lenet5', 'gru') for ``dataset``; 'gru'
    reads a (B, T, C) sequence and classifies its last state, h_T → Dense."""
    from jdl import models, nn

    if name == "logistic":
        return models.mlp([n_classes])
    if name == "mlp":
        return models.mlp([100, 100, n_classes])
    if name == "lenet5":
        return models.lenet5(n_classes, input_shape, activation=nn.relu, pool="max")
    if name == "cnn":
        if dataset == "mnist1d":
            return models.cnn1d(n_classes)
        return models.cnn(n_classes, input_shape, (32, 64), hidden=(128,))
    if name == "gru":
        if len(input_shape) != 2:
            raise ValueError(f"cnn_vs_mlp: 'gru' reads sequences (T, C), got input shape {input_shape}")
        return nn.serial(nn.GRU(GRU_HIDDEN, return_sequences=False), nn.Dense(n_classes))
    raise ValueError(f"cnn_vs_mlp: unknown model {name!r}")


def models_for(dataset: str) -> list[str]:
    return ["logistic", "mlp", "cnn"] + (["lenet5"] if dataset == "digits" else ["gru"])


def train_one(name: str, dataset: str, seed: int, epochs: int) -> dict:
    """Train one model on one data set; returns test accuracy, curves and the trained params."""
    import jdl
    from jdl import data
    from jdl.losses import softmax_cross_entropy
    from jdl.train import fit

    # the published split (MNIST-1D: 4,000 / 1,000), the one the paper's accuracies are on
    train, test = data.load(dataset, "train", validation_fraction=0), data.load(dataset, "test")
    batch_size, lr, _, _ = SETTINGS[dataset]
    model = make_model(name, dataset, train[0].shape[1:])
    result = fit(model, softmax_cross_entropy, jdl.optim.adam(lr), train, test_data=test, test_every_epoch=True, epochs=epochs,
                 batch_size=batch_size, seed=seed, progress=False)
    history = result.history
    return {"test_accuracy": history[-1]["test_accuracy"], "train_accuracy": history[-1]["train_accuracy"],
            "best_test_accuracy": max(h["test_accuracy"] for h in history),
            "params": jdl.param_count(result.train_state.params),
            "curve": [h["test_accuracy"] for h in history], "trained": result.train_state.params}


def plot(results: dict, filters: np.ndarray | None, workdir: str) -> list[str]:
    from matplotlib.figure import Figure

    paths = []
    fig = Figure(figsize=(5 * len(results), 3.4))
    axes = fig.subplots(1, len(results), squeeze=False)
    for ax, (dataset, runs) in zip(axes[0], results.items()):
        for name, r in runs.items():
            ax.plot(np.arange(1, len(r["curve"]) + 1), r["curve"], label=f"{name} ({r['test_accuracy']:.3f})")
        if dataset == "mnist1d":
            for name, acc in PAPER.items():
                ax.axhline(acc, ls=":", lw=0.8, color="gray")
                ax.text(1, acc + 0.01, f"paper {name} {acc:.0%}", fontsize=7, color="gray")
        ax.set_title(f"{dataset}: test accuracy")
        ax.set_xlabel("epoch")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    paths.append(os.path.join(workdir, "cnn_vs_mlp.png"))
    fig.savefig(paths[-1], dpi=90)
    if filters is not None:  # (k, k, 1, C) first-layer kernels
        n = filters.shape[-1]
        fig = Figure(figsize=(1.3 * n, 1.6))
        axes = fig.subplots(1, n)
        for i, ax in enumerate(np.atleast_1d(axes)):
            w = filters[:, :, 0, i]
            lim = np.abs(w).max()
            ax.imshow(w, cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"filter {i}", fontsize=7)
        fig.suptitle("LeNet-5 C1 filters learned on digits (red +, blue −)", fontsize=8)
        fig.tight_layout()
        paths.append(os.path.join(workdir, "cnn_filters.png"))
        fig.savefig(paths[-1], dpi=90)
    return paths


def run(workdir: str, quick: bool = False, seed: int = 0, datasets: str = "digits,mnist1d",
        models: str | None = None, epochs: int | None = None) -> dict:
    """Train every model of ``models`` (default: all for the data set) on each of ``datasets``
    for ``epochs`` (SETTINGS; 3 with ``quick``) and write the accuracy table, curves and the
    first-layer filters. Returns {dataset: {model: {test_accuracy, …}}, 'paper': PAPER}."""
    from experiments.common import write_results

    os.makedirs(workdir, exist_ok=True)
    results: dict = {}
    filters = None
    for dataset in datasets.split(","):
        if dataset not in SETTINGS:
            raise ValueError(f"cnn_vs_mlp: unknown data set {dataset!r}; known: {', '.join(SETTINGS)}")
        n_epochs = epochs or SETTINGS[dataset][3 if quick else 2]
        names = models.split(",") if models else models_for(dataset)
        results[dataset] = {}
        for name in names:
            r = train_one(name, dataset, seed, n_epochs)
            trained = r.pop("trained")
            if name == "lenet5":
                filters = np.asarray(trained["0_conv2d"]["w"])
            results[dataset][name] = r
    out = {**results, "paper_mnist1d": PAPER, "plots": plot(results, filters, workdir)}
    write_results(workdir, out)
    return out


if __name__ == "__main__":
    from absl import flags

    from experiments import common

    flags.DEFINE_string("datasets", "digits,mnist1d", "Comma-separated data sets: digits, mnist1d.")
    flags.DEFINE_string("models", None, "Comma-separated models (default: all for each data set).")
    flags.DEFINE_integer("epochs", None, "Epochs (default: per data set, see SETTINGS).")
    common.main(run, "cnn_vs_mlp")
