"""Semi-supervised learning on the digits: with 1% and 10% of the training labels, does the
unlabelled rest help? Compared on the same labelled examples and seeds:

- **supervised**: the MLP trained on the labelled examples alone (with and without augmentation);
- **pseudo-labelling** (self-training; Lee 2013): train, label the unlabelled pool with the
  model's own prediction ŷ = argmax p(x) wherever its confidence max_k p_k(x) ≥ τ, retrain from
  scratch on labelled ∪ pseudo-labelled, and repeat for a few rounds;
- **consistency with augmentation** (FixMatch-style; Sohn et al. 2020), in ``consistency.py``.

The labelled examples are a stratified draw (``jdl.data.splits.split``) from the 1,293 training
digits, the rest is the unlabelled pool (its labels are read only to report how right the
pseudo-labels are). Choices (τ, the round, early stopping) are made on the 144 validation digits
— note that a real 1% setting would not have 144 labelled validation digits; the test digits
(360) are measured once per fit and reported for the validation-chosen model.

    jdl experiment semi_supervised [--quick]
    python -m experiments.semi_supervised --workdir=runs/experiments/semi_supervised [--quick]
"""

from __future__ import annotations

import dataclasses

import numpy as np

from experiments.paradigms_common import digits_splits, mean_std, probabilities, train_classifier


@dataclasses.dataclass(frozen=True)
class Config:
    """Label fractions, seeds, Adam steps and early-stopping patience (epochs) of every fit, the
    thresholds τ and rounds of pseudo-labelling, the consistency run's steps, and whether to run
    the augmented supervised baseline."""

    fractions: tuple[float, ...] = (0.01, 0.1)
    seeds: int = 3
    steps: int = 600
    patience: int = 10
    taus: tuple[float, ...] = (0.9, 0.99)
    rounds: int = 2
    consistency_steps: int = 1500
    augment_baseline: bool = True


QUICK = Config(fractions=(0.1,), seeds=1, steps=250, patience=5, taus=(0.9,), rounds=1, consistency_steps=100,
               augment_baseline=False)


def labelled_split(train: tuple, fraction: float, seed: int) -> tuple[tuple, tuple]:
    """(labelled, pool): a stratified ``fraction`` of ``train`` with its labels, and the rest."""
    from jdl.data import splits

    pool, labelled = splits.split(*train, fraction, seed=seed)
    return labelled, pool


def pseudo_label(train_state, labelled: tuple, pool: tuple, tau: float) -> tuple[tuple, dict]:
    """labelled ∪ {(x, argmax p(x)) : x in pool, max p(x) ≥ τ}; with the count and the accuracy
    of the pseudo-labels against the pool's hidden labels."""
    p = probabilities(train_state, pool[0])
    keep = p.max(axis=1) >= tau
    y_hat = p.argmax(axis=1).astype(np.int32)
    info = {"n_pseudo": int(keep.sum()),
            "pseudo_accuracy": float((y_hat[keep] == pool[1][keep]).mean()) if keep.any() else float("nan")}
    return (np.concatenate([labelled[0], pool[0][keep]]), np.concatenate([labelled[1], y_hat[keep]])), info


def self_training(labelled: tuple, pool: tuple, d: dict, first, *, tau: float, rounds: int, seed: int,
                  steps: int, patience: int) -> list[dict]:
    """Rounds 1..R of pseudo-labelling from the supervised fit ``first``: each round's pseudo-label
    count and accuracy, validation and test accuracy."""
    out, previous = [], first
    for r in range(1, rounds + 1):
        train, info = pseudo_label(previous.train_state, labelled, pool, tau)
        previous = train_classifier(train, d["validation"], d["test"], seed=seed + 1000 * r, steps=steps,
                                    patience=patience)
        out.append({"round": r, **info, "validation_accuracy": best_validation(previous.history),
                    "test_accuracy": previous.test["accuracy"]})
    return out


def best_validation(history: list[dict]) -> float:
    """The validation accuracy of the epoch ``fit`` returned (the best one under early stopping)."""
    return max(h["validation_accuracy"] for h in history)


def one_seed(d: dict, fraction: float, seed: int, cfg: Config) -> dict:
    """Every method on one labelled draw: supervised (± augmentation), pseudo-labelling for each τ
    (τ and round chosen on validation) and consistency."""
    from jdl.data import augment

    from experiments import consistency

    labelled, pool = labelled_split(d["train"], fraction, seed)
    fit_args = {"seed": seed, "steps": cfg.steps, "patience": cfg.patience}
    sup = train_classifier(labelled, d["validation"], d["test"], **fit_args)
    sup_aug = (train_classifier(labelled, d["validation"], d["test"], augment=augment.batched(consistency.WEAK),
                                **fit_args) if cfg.augment_baseline else sup)
    rounds = {str(tau): self_training(labelled, pool, d, sup, tau=tau, rounds=cfg.rounds, **fit_args)
              for tau in cfg.taus}
    chosen = max(((tau, r) for tau, rs in rounds.items() for r in rs), key=lambda c: c[1]["validation_accuracy"])
    cons = consistency.train(labelled, pool[0], d["validation"], d["test"], seed=seed, steps=cfg.consistency_steps)
    return {"n_labels": len(labelled[0]), "supervised": sup.test["accuracy"],
            "supervised_validation": best_validation(sup.history),
            "supervised_augment": sup_aug.test["accuracy"] if cfg.augment_baseline else None,
            "pseudo_label": chosen[1]["test_accuracy"], "chosen": {"tau": float(chosen[0]), **chosen[1]},
            "rounds": rounds, "consistency": cons["test_accuracy"], "consistency_detail": cons}


METHODS = ("supervised", "supervised_augment", "pseudo_label", "consistency")


def methods(cfg: Config) -> tuple[str, ...]:
    """The methods a configuration runs (the quick one skips the augmented baseline)."""
    return METHODS if cfg.augment_baseline else tuple(m for m in METHODS if m != "supervised_augment")


def run(workdir: str, quick: bool = False, seed: int = 0) -> dict:
    from experiments.common import write_results

    cfg = QUICK if quick else Config()
    d = digits_splits()
    table = {}
    for fraction in cfg.fractions:
        runs = [one_seed(d, fraction, seed + s, cfg) for s in range(cfg.seeds)]
        table[str(fraction)] = {"n_labels": runs[0]["n_labels"], **{m: mean_std([r[m] for r in runs]) for m in methods(cfg)},
                                "runs": runs}
    results = {"config": dataclasses.asdict(cfg), "fractions": table}
    results["plots"] = plot(table, workdir)
    write_results(workdir, results)
    return results


def plot(table: dict, workdir: str) -> list[str]:
    """Test accuracy of every method per label fraction, and the pseudo-label rounds."""
    from matplotlib.figure import Figure

    from experiments.common import save_figure

    fig = Figure(figsize=(9, 3.6))
    ax, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    pos = np.arange(len(table))
    for i, m in enumerate(m for m in METHODS if m in next(iter(table.values()))):
        ax.bar(pos + (i - 1.5) * 0.2, [t[m]["mean"] for t in table.values()], 0.2,
               yerr=[t[m]["std"] for t in table.values()], label=m.replace("_", " "))
    ax.set_xticks(pos, [f"{float(f):.0%} labels ({t['n_labels']})" for f, t in table.items()])
    ax.set_ylim(0.3, 1.0)
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=7, loc="lower right")
    for f, t in table.items():
        run0 = t["runs"][0]
        for tau, rs in run0["rounds"].items():
            xs = [0] + [r["round"] for r in rs]
            ax2.plot(xs, [run0["supervised_validation"]] + [r["validation_accuracy"] for r in rs], "o-",
                     label=f"{float(f):.0%} labels, τ={tau}")
    ax2.set_xlabel("pseudo-labelling round (0 = supervised)")
    ax2.set_ylabel("validation accuracy (seed 0)")
    ax2.legend(fontsize=7)
    return [save_figure(fig, workdir, "semi_supervised.png", dpi=100)]


if __name__ == "__main__":
    from experiments.common import main

    main(run, "semi_supervised")
