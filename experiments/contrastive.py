"""Self-supervised learning on 8×8 digits: SimCLR and rotation prediction against labels, read
through a linear probe.

One small CNN encoder f (``jdl.models.cnn`` with ReLU features) is trained four ways:
  - not at all (random initialization);
  - SimCLR: a projection head g on top, NT-Xent between two augmented views of every digit
    (``jdl.train.selfsupervised.simclr``), no labels;
  - rotation prediction: a 4-way head naming the turn (0°, 90°, 180°, 270°) of every digit
    (``rotation_prediction``), no labels;
  - supervised: a 10-way head and the labels (``jdl.train.fit``), the usual way.
Each frozen encoder's features f(x) (and the raw pixels) are then read by a linear probe
(``jdl.train.probe.linear_probe``: softmax regression, L2 and epoch chosen on validation,
scored once on test), with all the training labels and with 10% of them (the supervised
encoder is then trained on that 10% too; the self-supervised ones still see every image).

    python -m experiments.contrastive --workdir=runs/contrastive [--quick]
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Config:
    """Encoder: CONV3 widths ``channels``, then a ``features``-wide ReLU layer. SimCLR: head of
    ``proj_dim`` outputs, temperature ``tau``, ``simclr_epochs`` in batches of ``batch``; views
    drawn by random resized crops (area ≥ ``min_scale``), rotations up to ±``degrees`` and noise
    ``noise``. Rotation: ``rotation_epochs``. Supervised: up to ``supervised_epochs`` (early
    stopping). Adam(``lr``) throughout; probes try each L2 in ``l2s``."""
    channels: tuple = (32, 64)
    features: int = 128
    proj_dim: int = 64
    tau: float = 0.5
    batch: int = 256
    simclr_epochs: int = 300
    rotation_epochs: int = 100
    supervised_epochs: int = 100
    min_scale: float = 0.4
    degrees: float = 15.0
    noise: float = 0.1
    lr: float = 1e-3
    l2s: tuple = (0.0, 1e-3, 1e-2, 1e-1)
    probe_epochs: int = 200
    label_fractions: tuple = (1.0, 0.1)


QUICK = Config(channels=(8, 16), features=32, proj_dim=16, batch=128, simclr_epochs=1, rotation_epochs=1,
               supervised_epochs=1, l2s=(0.0,), probe_epochs=3, label_fractions=(0.1,))


def encoder(cfg: Config):
    """f: (B, 8, 8, 1) → (B, features), ReLU features of a small CNN."""
    from jdl.models import cnn
    from jdl.nn import relu, serial

    return serial(cnn(cfg.features, (8, 8, 1), cfg.channels, activation=relu), relu)


def views(cfg: Config):
    """SimCLR's augmentation t ~ T on a batch: crop-and-resize, a small rotation, noise."""
    from jdl.data import augment as A

    return A.batched(A.compose(A.random_resized_crop(cfg.min_scale), A.random_affine(cfg.degrees),
                               A.gaussian_noise(cfg.noise)))


def pretrain(cfg: Config, method: str, x: np.ndarray, seed: int):
    """Train serial(f, head) by ``method`` ('simclr' or 'rotation') on unlabelled x; returns the
    model, its params and state (the encoder's under '0_serial'), history and seconds."""
    import jax.numpy as jnp

    from jdl import optim
    from jdl.data import augment as A
    from jdl.models import mlp
    from jdl.nn import Dense, serial
    from jdl.train import init_train_state, make_step, selfsupervised as ssl

    if method == "simclr":
        model = serial(encoder(cfg), mlp([cfg.features, cfg.proj_dim], flatten=False))
        loss_fn, epochs = ssl.simclr(model, views(cfg), cfg.tau), cfg.simclr_epochs
    else:
        model = serial(encoder(cfg), Dense(4))
        loss_fn, epochs = ssl.rotation_prediction(model, A.batched(A.random_crop(1))), cfg.rotation_epochs
    opt = optim.adam(cfg.lr)
    ts = init_train_state(model, opt, jnp.zeros((cfg.batch, 8, 8, 1)), seed=seed)
    start = time.perf_counter()
    ts, history = ssl.pretrain(make_step(loss_fn, opt), ts, x, epochs, cfg.batch, seed)
    return model, ts.params, ts.state, history, time.perf_counter() - start


def supervised(cfg: Config, train, validation, test, seed: int):
    """serial(f, Dense(10)) trained on the labels with ``fit`` (early stopping on validation
    accuracy, the usual mild augmentation), scored once on test; returns params, state, the
    ``FitResult`` and seconds."""
    from jdl import optim
    from jdl.data import augment as A
    from jdl.losses import softmax_cross_entropy
    from jdl.nn import Dense, serial
    from jdl.train import fit

    start = time.perf_counter()
    r = fit(serial(encoder(cfg), Dense(10)), softmax_cross_entropy, optim.adam(cfg.lr), train, validation,
            test_data=test, epochs=cfg.supervised_epochs, batch_size=min(128, len(train[0])), seed=seed,
            progress=False, augment=A.default((1, 8, 8, 1)), early_stopping_patience=20,
            early_stopping_metric="validation_accuracy")
    return r.train_state.params, r.train_state.state, r, time.perf_counter() - start


def run(workdir: str, quick: bool = False, seed: int = 0, config: Config | None = None) -> dict:
    """Train the encoders, probe every feature set at every label fraction; write results.json,
    features_pca.png and simclr_curves.png."""
    import jax

    from experiments.common import write_results
    from jdl import data

    cfg = config or (QUICK if quick else Config())
    splits = {s: data.load("digits", s) for s in ("train", "validation", "test")}
    f = encoder(cfg)
    feats = {"raw_pixels": {s: x.reshape(len(x), -1) for s, (x, _) in splits.items()},
             "random_encoder": features(f, *f.init(jax.random.key(seed), splits["train"][0][:1]), splits)}
    results: dict = {"config": asdict(cfg), "pretraining": {}, "probes": {}, "supervised": {}}
    for method in ("simclr", "rotation"):
        model, params, state, history, secs = pretrain(cfg, method, splits["train"][0], seed)
        feats[method] = features(f, params["0_serial"], state["0_serial"], splits)
        if method == "simclr":  # the projection head's output z = g(h), for comparison with h = f(x)
            feats["simclr_projection"] = features(model, params, state, splits)
        results["pretraining"][method] = {"seconds": secs, "history": history}
        logging.info("%s: %.0f s, last epoch %s", method, secs, history[-1])
    shown: dict = {}
    for fraction in cfg.label_fractions:
        idx = label_subset(splits["train"][1], fraction, seed)
        sub = tuple(a[idx] for a in splits["train"])
        params, state, r, secs = supervised(cfg, sub, splits["validation"], splits["test"], seed)
        feats["supervised"] = features(f, params["0_serial"], state["0_serial"], splits)
        if fraction == cfg.label_fractions[0]:  # the plots show the first fraction's supervised encoder
            shown = dict(feats)
        results["supervised"][str(fraction)] = {"n_labels": len(idx), "test_accuracy": r.test["accuracy"],
                                                "seconds": secs, "epochs": len(r.history)}
        results["probes"][str(fraction)] = {name: probe(cfg, fs, splits, idx, seed) for name, fs in feats.items()}
        logging.info("labels %s: %s", fraction, {k: round(v["test_accuracy"], 3)
                                                 for k, v in results["probes"][str(fraction)].items()})
    write_results(workdir, results)
    plot(results, shown, splits["test"][1], workdir)
    return results


def features(module, params, state, splits: dict) -> dict:
    """{split: the frozen module's outputs on that split's images (N, D)}."""
    from jdl.train.selfsupervised import encode

    return {s: encode(module, params, state, x) for s, (x, _) in splits.items()}


def probe(cfg: Config, fs: dict, splits: dict, idx: np.ndarray, seed: int) -> dict:
    """The linear probe of features ``fs``, fitted on the training examples ``idx``."""
    from jdl.train.probe import linear_probe

    r = linear_probe((fs["train"][idx], splits["train"][1][idx]), (fs["validation"], splits["validation"][1]),
                     (fs["test"], splits["test"][1]), cfg.l2s, cfg.probe_epochs, seed=seed)
    return r._asdict()


def label_subset(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Indices of a class-stratified share ``fraction`` of the labels (``jdl.data.split`` on
    the indices; all of them for 1)."""
    from jdl.data import split

    if fraction >= 1:
        return np.arange(len(y))
    _, (idx, _) = split(np.arange(len(y)), y, fraction, seed)
    return idx


def plot(results: dict, feats: dict, y_test: np.ndarray, workdir: str) -> None:
    """features_pca.png: each feature set's test features on their first two principal
    components, coloured by class (the first label fraction's supervised encoder);
    simclr_curves.png: NT-Xent and positive-pair accuracy per epoch; probes.png: the probes'
    test accuracy per feature set and label fraction."""
    import matplotlib.pyplot as plt

    from experiments.common import save_figure

    names = ["raw_pixels", "random_encoder", "simclr", "rotation", "supervised"]
    first = str(results["config"]["label_fractions"][0])
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.5))
    for ax, name in zip(axes, names):
        f = feats[name]["test"] - feats[name]["test"].mean(0)
        pcs = f @ np.linalg.svd(f, full_matrices=False)[2][:2].T  # (N, 2)
        ax.scatter(pcs[:, 0], pcs[:, 1], c=y_test, cmap="tab10", s=5, vmin=0, vmax=9)
        ax.set_title(f"{name.replace('_', ' ')} (probe {results['probes'][first][name]['test_accuracy']:.1%})",
                     fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle("test digits on the first two principal components of each feature set (colour: class)",
                 fontsize=10)
    save_figure(fig, workdir, "features_pca.png")
    hist = results["pretraining"]["simclr"]["history"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.3))
    a.plot([h["train_loss"] for h in hist])
    a.set(xlabel="epoch", ylabel="NT-Xent", title="SimCLR loss")
    b.plot([h["train_positive_accuracy"] for h in hist])
    b.set(xlabel="epoch", ylabel="share", title="views whose nearest view is their positive")
    save_figure(fig, workdir, "simclr_curves.png")
    all_names = list(results["probes"][first])
    fig, ax = plt.subplots(figsize=(9, 3.5))
    width = 0.8 / len(results["probes"])
    for i, (fraction, probes) in enumerate(results["probes"].items()):
        n = results["supervised"][fraction]["n_labels"]
        ax.bar(np.arange(len(all_names)) + i * width, [probes[k]["test_accuracy"] for k in all_names], width,
               label=f"{n} labels")
    ax.set_xticks(np.arange(len(all_names)) + width * (len(results["probes"]) - 1) / 2,
                  [k.replace("_", " ") for k in all_names], fontsize=8)
    ax.set(ylim=(0.5, 1.0), ylabel="linear-probe test accuracy")
    ax.legend(fontsize=8)
    save_figure(fig, workdir, "probes.png")


def main() -> None:
    from experiments.common import main as common_main

    common_main(run, "contrastive")


if __name__ == "__main__":
    main()
