"""Transfer learning on the 8×8 digits: pre-train on digits 0–4, adapt to digits 5–9.

A CNN (CONV3-32, POOL, CONV3-64, POOL, FC-128, FC-5) is trained on the source task, digits 0–4.
The target task, digits 5–9 (labels 5..9 read as 0..4), gets 10, 100 or all (~129) labelled
examples per class, and four ways to learn it:

* ``scratch``: the same CNN from a random init, every weight trained;
* ``probe``: the pre-trained backbone frozen (``jdl.optim.frozen``), a fresh head trained — a
  linear classifier on the source features;
* ``finetune``: the pre-trained backbone and a fresh head, every weight trained;
* ``lora``: the backbone frozen, rank-4 adapters (``jdl.nn.lora``) on its hidden Dense, and the
  fresh head trained.

The pre-trained params are loaded with ``restore_matching`` (head excluded, so it starts fresh)
and training starts from them with ``starting_from``. Choices use the validation split only: the
source model's best epoch, and for each (method, labels) the learning rate from a grid by mean
validation accuracy over the seeds, each run kept at its best validation epoch. The test set
(digits 5–9 of the published test split) is measured once per seed, for the chosen rate.

    python -m experiments.transfer --workdir=runs/transfer [--quick]
"""

from __future__ import annotations

import time

import numpy as np

METHODS = ("scratch", "probe", "finetune", "lora")
LABELS = (10, 100, "all")
LEARNING_RATES = (3e-4, 1e-3, 3e-3)
STEPS = 300  # optimizer steps per target run
CHANNELS, HIDDEN, N_CLASSES = (32, 64), 128, 5


def task(split: str, digits: range) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the digits split restricted to ``digits``, labels shifted to 0..4."""
    from jdl import data

    x, y = data.load("digits", split)
    keep = np.isin(y, list(digits))
    return x[keep], (y[keep] - digits.start).astype(np.int32)


def per_class(x: np.ndarray, y: np.ndarray, n: int | str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` examples of each class in a seeded order ('all': every example)."""
    if n == "all":
        return x, y
    order = np.random.default_rng(seed).permutation(len(y))
    keep = np.concatenate([order[y[order] == c][:n] for c in range(N_CLASSES)])
    return x[keep], y[keep]


def make_model():
    from jdl import models

    return models.cnn(N_CLASSES, (8, 8, 1), CHANNELS, hidden=(HIDDEN,))


def head_key(params: dict) -> str:
    """The logits layer's key: the last child of the serial ('8_dense')."""
    return max(params, key=lambda k: int(k.split("_")[0]))


def train(model, optimizer, train_data, validation, seed: int, steps: int):
    """``fit`` for about ``steps`` steps, keeping the best validation epoch; returns FitResult."""
    from jdl.losses import softmax_cross_entropy
    from jdl.train import fit

    batch = min(32, len(train_data[0]) // 2)
    epochs = max(1, -(-steps // (len(train_data[0]) // batch)))
    return fit(model, softmax_cross_entropy, optimizer, train_data, validation, epochs=epochs,
               batch_size=batch, seed=seed, progress=False, tensorboard=False,
               early_stopping_patience=epochs, early_stopping_metric="validation_accuracy")


def pretrain(seed: int, steps: int):
    """The source model (digits 0–4): (params, validation accuracy)."""
    from jdl import optim

    result = train(make_model(), optim.adam(1e-3), task("train", range(0, 5)),
                   task("validation", range(0, 5)), seed, steps)
    return result.train_state.params, max(r["validation_accuracy"] for r in result.history)


def adapted(method: str, source: dict, lr: float, seed: int):
    """(model, optimizer) of one method, started from the source params where it uses them."""
    import jax

    from jdl import optim
    from jdl.nn import lora
    from jdl.train import restore_matching, starting_from

    model = make_model()
    fresh, _ = model.init(jax.random.key(1000 + seed), jax.ShapeDtypeStruct((1, 8, 8, 1), np.float32))
    head = head_key(fresh)
    if method == "scratch":
        return starting_from(model, fresh), optim.adam(lr)
    params, report = restore_matching(fresh, source, exclude=head)
    if report.fresh != [f"{head}/b", f"{head}/w"]:
        raise RuntimeError(f"transfer: expected only the head to start fresh, got {report.fresh}")
    backbone = [k for k in params if k != head]
    if method == "probe":
        return starting_from(model, params), optim.frozen(optim.adam(lr), backbone)
    if method == "finetune":
        return starting_from(model, params), optim.adam(lr)
    config = lora.LoRAConfig(rank=4, alpha=8.0, targets=[k for k in backbone if k.endswith("_dense")])
    lp = lora.init_lora(jax.random.key(2000 + seed), params, config)
    return (starting_from(lora.with_lora(model, config), lp),
            optim.frozen(optim.adam(lr), [f"base/{k}" for k in backbone]))


def run(workdir: str, quick: bool = False, seed: int = 0) -> dict:
    from jdl.train import evaluate, make_eval_step
    from jdl.losses import softmax_cross_entropy
    from experiments.common import write_results

    seeds = [seed] if quick else [seed, seed + 1, seed + 2]
    steps, lrs = (5, LEARNING_RATES[1:2]) if quick else (STEPS, LEARNING_RATES)
    labels = (10,) if quick else LABELS
    methods = ("probe", "lora") if quick else METHODS  # quick: the two that freeze, for speed
    start = time.perf_counter()
    target = {s: task(s, range(5, 10)) for s in ("train", "validation", "test")}
    sources = {s: pretrain(s, 10 if quick else 600) for s in seeds}
    runs = {}  # (method, n, lr, seed) → (validation accuracy, model, params, state)
    for method in methods:
        for n in labels:
            for lr in lrs:
                for s in seeds:
                    model, opt = adapted(method, sources[s][0], lr, s)
                    r = train(model, opt, per_class(*target["train"], n, s), target["validation"], s, steps)
                    ts = r.train_state
                    runs[method, n, lr, s] = (max(h["validation_accuracy"] for h in r.history), model,
                                              ts.params, ts.state)
    table = {}
    for method in methods:
        for n in labels:
            val = {lr: float(np.mean([runs[method, n, lr, s][0] for s in seeds])) for lr in lrs}
            best = max(lrs, key=lambda lr: val[lr])
            test = []
            for s in seeds:  # the test set, once per seed, for the chosen rate only
                _, model, params, state = runs[method, n, best, s]
                x, y = target["test"]
                test.append(evaluate(make_eval_step(model, softmax_cross_entropy), params, state, x, y)["accuracy"])
            table[f"{method}/{n}"] = {"method": method, "labels_per_class": n, "learning_rate": best,
                                      "validation_accuracy": val[best], "test_accuracy": test,
                                      "test_mean": float(np.mean(test)), "test_std": float(np.std(test))}
    results = {"table": table, "methods": list(methods), "source_validation_accuracy": [sources[s][1] for s in seeds], "seeds": seeds,
               "steps": steps, "learning_rates": list(lrs), "labels": list(labels),
               "n_target": {k: len(v[1]) for k, v in target.items()}, "seconds": time.perf_counter() - start}
    write_results(workdir, results)
    plot(results, workdir)
    return results


def plot(results: dict, workdir: str) -> str:
    """Test accuracy (mean ± std over seeds) against labels per class, one line per method."""
    from matplotlib.figure import Figure

    from experiments.common import save_figure

    fig = Figure(figsize=(5, 3.5))
    ax = fig.add_subplot()
    labels = results["labels"]
    for method in results["methods"]:
        rows = [results["table"][f"{method}/{n}"] for n in labels]
        ax.errorbar(range(len(labels)), [r["test_mean"] for r in rows], [r["test_std"] for r in rows],
                    marker="o", capsize=3, label=method)
    ax.set_xticks(range(len(labels)), [str(n) for n in labels])
    ax.set_xlabel("labelled examples per class (digits 5–9)")
    ax.set_ylabel("test accuracy")
    ax.set_title("pre-trained on digits 0–4")
    ax.legend()
    return save_figure(fig, workdir, "transfer.png")


if __name__ == "__main__":
    from experiments.common import main

    main(run, "transfer")
