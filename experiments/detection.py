"""Every registered detector (``jdl.detection.zoo.DETECTORS``) trained on the shapes training split
and scored on its test split: mAP@0.5 (VOC, all-point AP) and COCO's mAP@[.5:.95] (101-point),
per-class AP, recall by object size and overlap, images per second and parameters; a PNG of
predictions (ground truth dashed, detections solid) and one of the worst test images.

The validation split (the last 10 % of the published training images) chooses each detector's
best epoch (``jdl.detection.train``); the test set is used once, at the end.

    python -m experiments.detection --workdir=runs/detection [--detectors=ssd,yolo] [--quick]
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from experiments.common import main, save_figure, write_results

QUICK = {"train": 64, "validation": 32, "test": 32, "widths": (4, 8, 8, 8), "epochs": 1}


def load(quick: bool):
    """(train, validation, test) splits of shapes; the first few images of each with ``quick``."""
    from jdl import data

    splits = [data.load("shapes", s) for s in ("train", "validation", "test")]
    if quick:
        splits = [(x[:QUICK[s]], y[:QUICK[s]]) for (x, y), s in zip(splits, ("train", "validation", "test"))]
    return splits


def figures(name: str, workdir: str, test, dets, found) -> dict:
    """predictions_<name>.png (the first 12 test images) and failures_<name>.png (the 12 images
    with the most missed objects); returns their paths."""
    from jdl.data.shapes import CLASSES
    from jdl.detection.plot import prediction_grid

    x, y = test
    n = min(12, len(x))
    first = np.arange(n)
    missed = np.array([np.sum(~f) for f in found])
    worst = np.argsort(-missed, kind="stable")[:n]
    paths = {}
    for kind, idx in (("predictions", first), ("failures", worst)):
        titles = [f"test {i}: missed {missed[i]} of {len(found[i])}" for i in idx]
        fig = prediction_grid(x[idx], y[idx], [dets[i] for i in idx], CLASSES, n_cols=6, titles=titles)
        paths[kind] = save_figure(fig, workdir, f"{kind}_{name}.png", dpi=110)
    return paths


def run_one(name: str, splits, workdir: str, quick: bool, seed: int) -> dict:
    """Train detector ``name`` with its ``zoo.SETTINGS``, score it on the test split, draw it."""
    import dataclasses

    from jdl.core import param_count
    from jdl.data.shapes import CLASSES, unpad
    from jdl.detection import analysis, as_metric_input, zoo
    from jdl.detection.train import TrainConfig, evaluate, predict_all, train

    train_data, validation_data, test = splits
    settings = zoo.SETTINGS.get(name, TrainConfig())
    if quick:
        settings = dataclasses.replace(settings, epochs=QUICK["epochs"], batch_size=16, eval_batch_size=32)
    settings = dataclasses.replace(settings, seed=seed)
    detector = zoo.build(name, len(CLASSES), QUICK["widths"] if quick else None)
    start = time.perf_counter()
    progress = lambda epoch, r, ts: print(f"{name} epoch {epoch}: loss {r['train_loss']:.3f}, validation mAP@0.5 "
                                          f"{r.get('validation_map50', float('nan')):.3f}", flush=True)
    result = train(detector, train_data, validation_data, len(CLASSES), settings, callbacks=[progress])
    seconds = time.perf_counter() - start
    scores = evaluate(detector, result.params, result.state, test, len(CLASSES), settings.eval_batch_size)
    dets, _ = predict_all(detector, result.params, result.state, test[0], settings.eval_batch_size)
    dets = as_metric_input(dets)
    found = analysis.found_objects(dets, unpad(test[1]))
    return {"test": {**scores, "ap50": dict(zip(CLASSES, scores["ap50"]))},
            "recall_at_0.5": analysis.recall_by_group(found, unpad(test[1])),
            "params": param_count(result.params), "best_epoch": result.best_epoch, "train_seconds": seconds,
            "settings": dataclasses.asdict(settings), "history": result.history,
            "figures": figures(name, workdir, test, dets, found)}


def run(workdir: str, quick: bool = False, seed: int = 0, detectors: str | None = None) -> dict:
    """Train and score each detector of ``detectors`` (comma-separated names; default all of
    ``zoo.DETECTORS``); writes results.json ({name: results}) and results_<name>.json."""
    from jdl.detection import zoo

    names = list(zoo.DETECTORS) if not detectors else [d.strip() for d in detectors.split(",") if d.strip()]
    unknown = [n for n in names if n not in zoo.DETECTORS]
    if unknown:
        raise ValueError(f"experiments.detection: unknown detectors {unknown}; known: {', '.join(zoo.DETECTORS)}")
    splits = load(quick)
    results = {}
    for name in names:
        results[name] = run_one(name, splits, workdir, quick, seed)
        with open(os.path.join(workdir, f"results_{name}.json"), "w") as f:
            json.dump(results[name], f, indent=1)
        t = results[name]["test"]
        print(f"{name}: test mAP@0.5 {t['map50']:.3f}, mAP@[.5:.95] {t['map']:.3f}, "
              f"{t['images_per_s']:.0f} images/s, {results[name]['params']:,} params", flush=True)
    write_results(workdir, results)
    return results


if __name__ == "__main__":
    from absl import flags

    flags.DEFINE_string("detectors", None, "Comma-separated detector names (default: every registered one).")
    main(run, "detection")
