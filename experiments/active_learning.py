"""Active learning on the digits: uncertainty sampling vs random sampling, accuracy against the
number of labels used.

All 1,293 training digits form the pool whose labels are hidden until asked for. Both strategies
start from the same 20 random labels; each round the MLP is trained from scratch on the labels so
far (``jdl.train.fit``) and asks for 20 more:

- **random**: 20 pool examples uniformly at random (the supervised baseline at that label count);
- **entropy** (uncertainty sampling): the 20 with the largest predictive entropy
  H(x) = −Σ_k p_k(x) log p_k(x) under the current model;
- **least_confidence** (available, not in the default run): the 20 with the smallest max_k p_k(x).

"Labels needed for 90%" is decided on the 144 validation digits: the first label count whose
model reaches 90% validation accuracy. The test digits (360) are measured after every round to
draw the learning curve — a curve of test accuracies, one per label count, reported as such; no
choice is made on them.

    jdl experiment active_learning [--quick]
"""

from __future__ import annotations

import dataclasses

import numpy as np

from experiments.paradigms_common import digits_splits, probabilities, train_classifier

STRATEGIES = ("random", "entropy")
TARGET = 0.9


@dataclasses.dataclass(frozen=True)
class Config:
    """Seeds, the first labels, labels added per round, rounds, and Adam steps per fit."""

    seeds: int = 3
    start: int = 20
    add: int = 20
    rounds: int = 9
    steps: int = 300


QUICK = Config(seeds=1, rounds=1, steps=150)


def entropy(p: np.ndarray) -> np.ndarray:
    """H = −Σ_k p_k log p_k per row (0·log 0 = 0). Shapes: p (N, K) → (N,)."""
    return -np.sum(p * np.log(np.where(p > 0, p, 1.0)), axis=1)


def choose(strategy: str, p: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Positions (into the unlabelled pool) of the ``n`` examples ``strategy`` asks labels for;
    p (N_pool, K) are the current model's probabilities on the pool."""
    if strategy == "random":
        return rng.choice(len(p), n, replace=False)
    if strategy == "entropy":
        score = entropy(p)
    elif strategy == "least_confidence":
        score = 1.0 - p.max(axis=1)
    else:
        raise ValueError(f"active_learning.choose: unknown strategy {strategy!r}; "
                         "expected 'random', 'entropy' or 'least_confidence'")
    return np.argsort(-score, kind="stable")[:n]


def curve(d: dict, strategy: str, *, seed: int, start: int, add: int, rounds: int, steps: int) -> list[dict]:
    """One strategy's rounds: labels used, validation and test accuracy, and the mean entropy of
    the examples picked next (under the model that picked them)."""
    x, y = d["train"]
    rng = np.random.default_rng(seed)
    labelled = rng.choice(len(x), start, replace=False)  # the same start for every strategy
    pick_rng = np.random.default_rng(seed + 1)
    out = []
    for r in range(rounds + 1):
        result = train_classifier((x[labelled], y[labelled]), d["validation"], d["test"], seed=seed, steps=steps)
        row = {"labels": len(labelled), "validation_accuracy": result.history[-1]["validation_accuracy"],
               "test_accuracy": result.test["accuracy"]}
        if r < rounds:
            pool = np.setdiff1d(np.arange(len(x)), labelled)
            p = probabilities(result.train_state, x[pool])
            picked = choose(strategy, p, add, pick_rng)
            row["picked_entropy"] = float(entropy(p[picked]).mean())
            row["pool_entropy"] = float(entropy(p).mean())
            labelled = np.concatenate([labelled, pool[picked]])
        out.append(row)
    return out


def labels_needed(rows: list[dict], key: str = "validation_accuracy") -> int | None:
    """The first label count whose ``key`` reaches ``TARGET`` (None if never)."""
    return next((r["labels"] for r in rows if r[key] >= TARGET), None)


def run(workdir: str, quick: bool = False, seed: int = 0) -> dict:
    from experiments.common import write_results

    cfg = QUICK if quick else Config()
    d = digits_splits()
    curves = {s: [curve(d, s, seed=seed + i, start=cfg.start, add=cfg.add, rounds=cfg.rounds,
                        steps=cfg.steps) for i in range(cfg.seeds)] for s in STRATEGIES}
    summary = {}
    for s, runs in curves.items():
        labels = [r["labels"] for r in runs[0]]
        mean = {k: np.mean([[r[k] for r in rows] for rows in runs], axis=0).tolist()
                for k in ("validation_accuracy", "test_accuracy")}
        mean_rows = [{"labels": n, "validation_accuracy": v} for n, v in zip(labels, mean["validation_accuracy"])]
        summary[s] = {"labels": labels, **{f"mean_{k}": v for k, v in mean.items()},
                      "labels_needed_per_seed": [labels_needed(rows) for rows in runs],
                      "labels_needed_mean_curve": labels_needed(mean_rows)}
    results = {"config": dataclasses.asdict(cfg), "target": TARGET, "summary": summary, "curves": curves}
    results["plots"] = plot(summary, workdir)
    write_results(workdir, results)
    return results


def plot(summary: dict, workdir: str) -> list[str]:
    """Validation and test accuracy against labels used, per strategy (mean over seeds)."""
    from matplotlib.figure import Figure

    from experiments.common import save_figure

    fig = Figure(figsize=(6, 3.8))
    ax = fig.add_subplot(1, 1, 1)
    for s, c in summary.items():
        line, = ax.plot(c["labels"], c["mean_test_accuracy"], "o-", label=f"{s}: test")
        ax.plot(c["labels"], c["mean_validation_accuracy"], "--", color=line.get_color(), label=f"{s}: validation")
    ax.axhline(TARGET, color="grey", lw=0.8)
    ax.set_xlabel("labels used")
    ax.set_ylabel("accuracy (mean over seeds)")
    ax.set_title("Active learning on digits: entropy vs random sampling")
    ax.legend(fontsize=8)
    return [save_figure(fig, workdir, "active_learning.png", dpi=100)]


if __name__ == "__main__":
    from experiments.common import main

    main(run, "active_learning")
