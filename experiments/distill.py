"""Knowledge distillation on the 8×8 digits (Hinton, Vinyals & Dean 2015).

A wide CNN teacher (CONV3-64, POOL, CONV3-128, POOL, FC-256) is trained on the digits. A small
MLP student (64 → 32 → 10, 2.4k params) then learns twice, from the same init and data order,
on all of the training images or on a seeded 10 % of them (the teacher saw them all; Hinton et
al. show soft targets carrying most of what the missing examples would teach):

* ``labels``: cross-entropy on the labels alone;
* ``distilled``: ``jdl.losses.distillation`` — α·T²·KL(softmax(t/T) ‖ softmax(s/T)) +
  (1 − α)·CE(s, y) with the teacher's logits t on the same training images (T = 4, α = 0.9).

Both keep their best epoch by validation cross-entropy on the labels (the teacher by validation
accuracy); the test set is measured once per run at the end. Three seeds; the table gives
mean ± std test accuracy. ``fit`` takes one target array, so the distilled student's targets
are the teacher's logits with the label appended as an 11th column (``pack``).

    python -m experiments.distill --workdir=runs/distill [--quick]
"""

from __future__ import annotations

import time

import numpy as np

TEMPERATURE, ALPHA = 4.0, 0.9
FRACTIONS = (1.0, 0.1)  # of the training images the student sees
STUDENT_STEPS = 6000
STUDENT_HIDDEN = (32,)
TEACHER_CHANNELS, TEACHER_HIDDEN = (64, 128), 256


def pack(teacher_logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Targets for ``fit``: (N, K) teacher logits and (N,) labels as one (N, K + 1) float array."""
    return np.concatenate([teacher_logits, labels[:, None].astype(np.float32)], axis=1)


def distill_loss(out, y, reduction: str = "mean"):
    """``distillation`` on packed targets y = [teacher logits | label]."""
    import jax.numpy as jnp

    from jdl.losses import distillation

    return distillation(out, y[..., :-1], y[..., -1].astype(jnp.int32), TEMPERATURE, ALPHA, reduction)


def label_loss(out, y, reduction: str = "mean"):
    """Cross-entropy on the label column of packed targets (what validation measures)."""
    import jax.numpy as jnp

    from jdl.losses import softmax_cross_entropy

    return softmax_cross_entropy(out, y[..., -1].astype(jnp.int32), reduction=reduction)


def logits(model, params, state, x: np.ndarray) -> np.ndarray:
    import jax

    return np.asarray(jax.jit(lambda p, s, x: model.apply(p, s, x)[0])(params, state, x))


def test_accuracy(model, params, state, test) -> float:
    from jdl.losses import softmax_cross_entropy
    from jdl.train import evaluate, make_eval_step

    return evaluate(make_eval_step(model, softmax_cross_entropy), params, state, *test)["accuracy"]


def train_students(train, val, soft: dict, fraction: float, seed: int, steps: int, test) -> dict:
    """The two students on a seeded ``fraction`` of the training images: {name: results}."""
    from jdl import models, optim, param_count
    from jdl.train import fit

    keep = np.random.default_rng(seed).permutation(len(train[0]))[:int(round(fraction * len(train[0])))]
    x, targets = train[0][keep], soft["train"][keep]
    epochs = max(2, -(-steps // (len(keep) // 32)))
    out = {}
    for name, loss in (("labels", label_loss), ("distilled", distill_loss)):
        student = models.mlp([*STUDENT_HIDDEN, 10])
        r = fit(student, loss, optim.adam(1e-3), (x, targets), (val[0], soft["val"]), epochs=epochs,
                batch_size=32, seed=100 + seed, progress=False, tensorboard=False, eval_loss_fn=label_loss,
                early_stopping_patience=epochs)
        best = min(r.history, key=lambda h: h["validation_loss"])
        out[name] = {"test_accuracy": test_accuracy(student, r.train_state.params, r.train_state.state, test),
                     "best_epoch": best["epoch"], "epochs": epochs, "validation_loss": best["validation_loss"],
                     "params": param_count(r.train_state.params), "n_train": len(keep)}
    return out


def run(workdir: str, quick: bool = False, seed: int = 0) -> dict:
    from jdl import data, models, optim
    from jdl.losses import softmax_cross_entropy
    from jdl.train import fit
    from experiments.common import write_results

    seeds = [seed] if quick else [seed, seed + 1, seed + 2]
    epochs_teacher, steps, fractions = (1, 40, FRACTIONS[:1]) if quick else (30, STUDENT_STEPS, FRACTIONS)
    train, val, test = (data.load("digits", s) for s in ("train", "validation", "test"))
    start, runs = time.perf_counter(), []
    for s in seeds:
        teacher = models.cnn(10, (8, 8, 1), TEACHER_CHANNELS, hidden=(TEACHER_HIDDEN,))
        t = fit(teacher, softmax_cross_entropy, optim.adam(1e-3), train, val, epochs=epochs_teacher, seed=s,
                batch_size=32, progress=False, tensorboard=False, early_stopping_patience=epochs_teacher,
                early_stopping_metric="validation_accuracy")
        tp, ts = t.train_state.params, t.train_state.state
        soft = {name: pack(logits(teacher, tp, ts, split[0]), split[1]) for name, split in (("train", train), ("val", val))}
        row = {"seed": s, "teacher_test_accuracy": test_accuracy(teacher, tp, ts, test)}
        for f in fractions:
            row[f"fraction_{f:g}"] = train_students(train, val, soft, f, s, steps, test)
        runs.append(row)
    teacher_acc = [r["teacher_test_accuracy"] for r in runs]
    results = {"runs": runs, "teacher": {"test_mean": float(np.mean(teacher_acc)), "test_std": float(np.std(teacher_acc))},
               "table": {}, "fractions": list(fractions), "temperature": TEMPERATURE, "alpha": ALPHA, "seeds": seeds}
    for f in fractions:
        for name in ("labels", "distilled"):
            acc = [r[f"fraction_{f:g}"][name]["test_accuracy"] for r in runs]
            results["table"][f"{name}/{f:g}"] = {"test_mean": float(np.mean(acc)), "test_std": float(np.std(acc)),
                                                 "test_accuracy": acc}
    results["seconds"] = time.perf_counter() - start
    write_results(workdir, results)
    plot(results, workdir)
    return results


def plot(results: dict, workdir: str) -> str:
    """Test accuracy (mean ± std over seeds) of the two students per training fraction, with
    the teacher's as a line."""
    from matplotlib.figure import Figure

    from experiments.common import save_figure

    fig = Figure(figsize=(4.5, 3.2))
    ax = fig.add_subplot()
    fractions = results["fractions"]
    for k, name in enumerate(("labels", "distilled")):
        rows = [results["table"][f"{name}/{f:g}"] for f in fractions]
        ax.errorbar([i + 0.1 * k for i in range(len(fractions))], [r["test_mean"] for r in rows],
                    [r["test_std"] for r in rows], fmt="o", capsize=3,
                    label="student: labels" if name == "labels" else f"student: T={TEMPERATURE:g}, α={ALPHA:g}")
    ax.axhline(results["teacher"]["test_mean"], color="k", ls="--", label="teacher (CNN)")
    ax.set_xticks(range(len(fractions)), [f"{f:.0%} of train" for f in fractions])
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=8)
    return save_figure(fig, workdir, "distill.png")


if __name__ == "__main__":
    from experiments.common import main

    main(run, "distill")
