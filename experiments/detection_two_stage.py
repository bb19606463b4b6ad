"""The sliding-window baseline and Faster R-CNN in miniature on the shapes data set.

Trains each detector of ``DETECTORS`` (``jdl.detection.sliding_window``, ``jdl.detection.two_stage``)
on the shapes training split (the last 10 % held out as validation: the kept checkpoint is the
one of best validation mAP@0.5) and scores it on the test set with ``jdl.metrics``:
mAP@0.5 (VOC, all-point AP), COCO mAP@[.5:.95] (101-point AP), per-class AP@0.5, images/s of
the jitted ``predict`` (batches of 100, compilation excluded) and parameters. Writes
results.json, the training curves and a grid of test predictions per detector.

    python -m experiments.detection_two_stage --workdir=runs/detection_two_stage [--quick] [--only=faster_rcnn]
"""

from __future__ import annotations

import os
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


def build_sliding_window(quick: bool = False):
    """The sliding-window (OverFeat) baseline, ``jdl.detection.sliding_window``."""
    from jdl.detection.sliding_window import SlidingWindowConfig, sliding_window_detector

    return sliding_window_detector(SlidingWindowConfig(widths=(8, 8, 8, 16) if quick else (16, 32, 32, 64)))


def build_faster_rcnn(quick: bool = False):
    """Faster R-CNN in miniature, ``jdl.detection.two_stage`` with its small stride-4 backbone."""
    from jdl.detection import two_stage

    if quick:
        return two_stage.two_stage_detector(two_stage.TwoStageConfig(hidden=16),
                                            two_stage.small_backbone((8, 8, 8, 8, 8)))
    return two_stage.two_stage_detector()


DETECTORS = {"sliding_window": build_sliding_window, "faster_rcnn": build_faster_rcnn}
SETTINGS = {"sliding_window": Settings(steps=1200, batch_size=16, learning_rate=2e-3, eval_every=300),
            "faster_rcnn": Settings(steps=1200, batch_size=16, learning_rate=2e-3, eval_every=300)}
QUICK = Settings(steps=3, batch_size=4, learning_rate=1e-3, eval_every=3)


def predict_all(predict, params, state, images: np.ndarray, batch_size: int = 100):
    """``predict`` over a whole set in equal batches (the last padded with zeros); returns the
    ``Detections`` as numpy arrays (N, D, ...) and the images/s of the pass (compiled before)."""
    import jax
    import jax.numpy as jnp

    batch_size = min(batch_size, len(images))
    jax.block_until_ready(predict(params, state, jnp.asarray(images[:batch_size])))  # compile
    outs, start = [], time.perf_counter()
    for i in range(0, len(images), batch_size):
        xb = images[i:i + batch_size]
        pad = batch_size - len(xb)
        xb = np.concatenate([xb, np.zeros((pad, *xb.shape[1:]), xb.dtype)]) if pad else xb
        out = jax.block_until_ready(predict(params, state, jnp.asarray(xb)))
        outs.append([np.asarray(a)[:len(xb) - pad] for a in out])
    seconds = time.perf_counter() - start
    return type(out)(*(np.concatenate(parts) for parts in zip(*outs))), len(images) / seconds


def score(predict, params, state, data, n_classes: int) -> dict:
    """mAP@0.5 (all-point), COCO mAP@[.5:.95] (101-point), per-class AP@0.5 and images/s."""
    from jdl.data.shapes import unpad
    from jdl.detection import as_metric_input
    from jdl.metrics import COCO_IOU_THRESHOLDS, mean_average_precision

    images, targets = data
    dets, speed = predict_all(predict, params, state, images)
    found, truth = as_metric_input(dets), unpad(targets)
    voc = mean_average_precision(found, truth, n_classes, (0.5,), "all_point")
    coco = mean_average_precision(found, truth, n_classes, COCO_IOU_THRESHOLDS, "101_point")
    return {"map50": voc["map"], "map": coco["map"], "ap50": [float(a) for a in voc["ap"][0]],
            "images_per_s": speed}, dets


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
    predict = predict or jax.jit(detector.predict)
    history, best, losses, epoch, start = [], (-1.0, None), [], 0, time.perf_counter()
    while int(ts.step) < settings.steps:
        for xb, yb in batches(x, y, settings.batch_size, seed=seed, epoch=epoch):
            ts, m = step(ts, {"images": jnp.asarray(xb), "targets": as_arrays(yb)})
            losses.append(m)
            t = int(ts.step)
            if t % settings.eval_every == 0 or t == settings.steps:
                val, _ = score(predict, ts.params, ts.state, validation_data, n_classes)
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


def plot_predictions(images, targets, dets, class_names, title: str, n: int = 12):
    """The first ``n`` test images: ground truth dashed, detections with score ≥ 0.5 solid."""
    from matplotlib.figure import Figure

    from jdl.detection.plot import draw_boxes

    fig = Figure(figsize=(1.9 * 6, 1.9 * (-(-n // 6)) + 0.3))
    axes = fig.subplots(-(-n // 6), 6, squeeze=False).ravel()
    for i, ax in enumerate(axes[:n]):
        v = targets["valid"][i]
        draw_boxes(ax, images[i], targets["boxes"][i][v], targets["labels"][i][v], class_names, linestyle="--")
        keep = dets.valid[i] & (dets.scores[i] >= 0.5)
        draw_boxes(ax, images[i], dets.boxes[i][keep], dets.labels[i][keep], class_names, dets.scores[i][keep])
    fig.suptitle(title + " (dashed: truth, solid: detections with score ≥ 0.5)", fontsize=8)
    return fig


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
    """Train and score every detector of ``DETECTORS`` (or the comma-separated ``only``); with
    ``quick``, tiny networks for a few steps on 16 validation and 16 test images."""
    import jax

    import jdl
    from experiments.common import save_figure, write_results
    from jdl.data import shapes

    names = only.split(",") if only else list(DETECTORS)
    train_data, validation = jdl.data.load("shapes", "train"), jdl.data.load("shapes", "validation")
    test = jdl.data.load("shapes", "test")
    if quick:
        train_data, validation, test = (tuple(a[:16] for a in d) for d in (train_data, validation, test))
    n_classes, results = len(shapes.CLASSES), {}
    for name in names:
        detector, settings = DETECTORS[name](quick), QUICK if quick else SETTINGS[name]
        start, predict = time.perf_counter(), jax.jit(detector.predict)
        params, state, history = train(detector, settings, train_data, validation, n_classes, seed, predict)
        seconds = time.perf_counter() - start
        scores, dets = score(predict, params, state, test, n_classes)
        results[name] = {**scores, "params": jdl.param_count(params), "train_seconds": seconds,
                         "settings": vars(settings), "history": history}
        print(name, {k: v for k, v in scores.items()}, flush=True)
        save_figure(plot_predictions(test[0], test[1], dets, shapes.CLASSES, name), workdir, f"predictions_{name}.png",
                    dpi=110)
    save_figure(plot_curves(results), workdir, "curves.png")
    write_results(workdir, {"detectors": results, "quick": quick, "seed": seed,
                            "classes": list(shapes.CLASSES)})
    return results


if __name__ == "__main__":
    from absl import flags

    from experiments import common

    flags.DEFINE_string("only", None, "Comma-separated detector names (default: all of DETECTORS).")
    common.main(run, "detection_two_stage")
