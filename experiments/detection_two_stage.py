"""The sliding-window baseline and Faster R-CNN in miniature on the shapes data set.

Trains the sliding-window baseline and Faster R-CNN in miniature (``jdl.detection.zoo``'s
``sliding_window`` and ``faster_rcnn``: ``jdl.detection.sliding_window``, ``jdl.detection.two_stage``)
for a fixed number of steps (no flips: the loop of the published table, written before
``jdl.detection.train``; ``experiments/detection.py`` trains the same builders with that loop) on the shapes training split (the last 10 % held out as validation: the kept checkpoint is the
one of best validation mAP@0.5) and scores it on the test set with ``jdl.metrics``:
mAP@0.5 (VOC, all-point AP), COCO mAP@[.5:.95] (101-point AP), per-class AP@0.5, images/s of
the jitted ``predict`` (batches of 100, compilation excluded) and parameters. Writes
results.json, the training curves and a grid of test predictions per detector.

    python -m experiments.detection_two_stage --workdir=runs/detection_two_stage [--quick] [--only=faster_rcnn]
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Settings:
    """Training of one detector: ``steps`` of AdamW (weight decay 1e-4) on batches of
    ``batch_size`` with a linear warmup over 5 % of the steps to ``learning_rate``, then
    cosine decay; validation every ``eval_every`` steps."""
    steps: int
    batch_size: int
    learning_rate: float
    eval_every: int


NAMES = ("sliding_window", "faster_rcnn")  # builders: jdl.detection.zoo.DETECTORS[name]
SETTINGS = {"sliding_window": Settings(steps=1200, batch_size=16, learning_rate=2e-3, eval_every=300),
            "faster_rcnn": Settings(steps=1200, batch_size=16, learning_rate=2e-3, eval_every=300)}
QUICK = Settings(steps=3, batch_size=4, learning_rate=1e-3, eval_every=3)
QUICK_WIDTHS = (8, 8, 8, 8, 8)


def train(detector, settings: Settings, train_data, validation_data, n_classes: int, seed: int = 0,
          predict=None):
    """``jdl.train.make_step`` on ``detector.loss`` for ``settings.steps`` steps over shuffled
    batches; validation mAP@0.5 every ``eval_every`` steps (with ``predict``, the jitted
    ``detector.predict`` by default), the best step's params kept.
    Returns (params, state, history)."""
    import jax
    import jax.numpy as jnp

    from jdl import optim
    from jdl.data import batches
    from jdl.data.shapes import as_arrays
    from jdl.train import make_step
    from jdl.train.state import TrainState

    x, y = train_data
    warmup = max(1, settings.steps // 20)
    lr = optim.warmup_cosine_decay_schedule(0.0, settings.learning_rate, warmup, max(settings.steps, warmup + 1))
    optimizer = optim.adamw(lr, weight_decay=1e-4)
    init_key, run_key = jax.random.split(jax.random.key(seed))
    params, state = detector.init(init_key, jnp.asarray(x[:settings.batch_size]))
    ts = TrainState(params, state, optimizer.init(params), jnp.zeros([], jnp.int32), run_key)
    step = make_step(lambda p, s, b, k: detector.loss(p, s, b["images"], b["targets"], k), optimizer)
    from jdl.detection.train import evaluate

    predict = predict or jax.jit(detector.predict)
    history, best, losses, epoch, start = [], (-1.0, None), [], 0, time.perf_counter()
    while int(ts.step) < settings.steps:
        for xb, yb in batches(x, y, settings.batch_size, seed=seed, epoch=epoch):
            ts, m = step(ts, {"images": jnp.asarray(xb), "targets": as_arrays(yb)})
            losses.append(m)
            t = int(ts.step)
            if t % settings.eval_every == 0 or t == settings.steps:
                val = evaluate(detector, ts.params, ts.state, validation_data, n_classes, predict=predict)
                record = {"step": t, "seconds": time.perf_counter() - start, "validation_map50": val["map50"],
                          **{f"train_{k}": float(np.mean([float(m[k]) for m in losses])) for k in losses[0]}}
                history.append(record)
                print(f"step {t}: loss {record['train_loss']:.4f}, validation mAP@0.5 {val['map50']:.4f}, "
                      f"{record['seconds']:.0f} s", flush=True)
                losses = []
                if val["map50"] > best[0]:
                    best = (val["map50"], jax.device_get((ts.params, ts.state)))
            if t >= settings.steps:
                break
        epoch += 1
    return best[1][0], best[1][1], history


def plot_curves(results: dict):
    """Training loss and validation mAP@0.5 against steps, one line per detector."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.2))
    ax_loss, ax_map = fig.subplots(1, 2)
    for name, r in results.items():
        steps = [h["step"] for h in r["history"]]
        ax_loss.plot(steps, [h["train_loss"] for h in r["history"]], marker=".", label=name)
        ax_map.plot(steps, [h["validation_map50"] for h in r["history"]], marker=".", label=name)
    ax_loss.set(xlabel="step", ylabel="training loss (mean since last point)", yscale="log")
    ax_map.set(xlabel="step", ylabel="validation mAP@0.5")
    ax_map.legend()
    return fig


def run(workdir: str, quick: bool = False, seed: int = 0, only: str | None = None) -> dict:
    """Train and score every detector of ``NAMES`` (or the comma-separated ``only``); with
    ``quick``, tiny networks for a few steps on 16 validation and 16 test images."""
    import jax

    import jdl
    from experiments.common import save_figure, write_results
    from jdl.data import shapes

    from jdl.detection import as_metric_input, zoo
    from jdl.detection.plot import prediction_grid
    from jdl.detection.train import evaluate, predict_all

    names = only.split(",") if only else list(NAMES)
    train_data, validation = jdl.data.load("shapes", "train"), jdl.data.load("shapes", "validation")
    test = jdl.data.load("shapes", "test")
    if quick:
        train_data, validation, test = (tuple(a[:16] for a in d) for d in (train_data, validation, test))
    n_classes, results = len(shapes.CLASSES), {}
    for name in names:
        detector = zoo.build(name, n_classes, QUICK_WIDTHS if quick else None)
        settings = QUICK if quick else SETTINGS[name]
        start, predict = time.perf_counter(), jax.jit(detector.predict)
        params, state, history = train(detector, settings, train_data, validation, n_classes, seed, predict)
        seconds = time.perf_counter() - start
        scores = evaluate(detector, params, state, test, n_classes, predict=predict)
        dets, _ = predict_all(detector, params, state, test[0][:12], predict=predict)
        results[name] = {**scores, "params": jdl.param_count(params), "train_seconds": seconds,
                         "settings": vars(settings), "history": history}
        print(name, {k: v for k, v in scores.items()}, flush=True)
        fig = prediction_grid(test[0][:12], test[1][:12], as_metric_input(dets), shapes.CLASSES, score_threshold=0.5)
        save_figure(fig, workdir, f"predictions_{name}.png", dpi=110)
    save_figure(plot_curves(results), workdir, "curves.png")
    write_results(workdir, {"detectors": results, "quick": quick, "seed": seed,
                            "classes": list(shapes.CLASSES)})
    return results


if __name__ == "__main__":
    from absl import flags

    from experiments import common

    flags.DEFINE_string("only", None, "Comma-separated detector names (default: all of NAMES).")
    common.main(run, "detection_two_stage")
