"""``jdl train --model=ssd --dataset=shapes`` (or yolo, or any detector of
``jdl.detection.zoo``): train a detector with ``jdl.detection.train`` and write what ``jdl train``
writes — metrics.jsonl (train loss and validation mAP per epoch), summary.json (the test mAP,
measured once at the end) — plus predictions.png (test images, ground truth dashed).

Detectors train with AdamW under a warmup-cosine schedule and left–right flips
(``jdl.detection.train.TrainConfig``; ``zoo.SETTINGS`` gives each one's defaults); the flags
``--epochs``, ``--batch_size``, ``--seed``, ``--learning_rate``, ``--weight_decay``,
``--early_stopping_patience`` (on validation mAP@0.5) and ``--validation_fraction`` apply;
``--hidden`` sets the backbone's widths (stem, then one stage each) when given. The flags of the
classifier path that detectors do not read (``UNREAD``: the optimizer and schedule flags,
regularization, checkpoints, precision, devices) are refused, naming them, when set.
"""

from __future__ import annotations

import dataclasses
import os
import time

from absl import app

from jdl.cli.config import TrainConfig, refuse_unread

# TrainConfig fields no detector reads: set away from their defaults, they are refused, not ignored
UNREAD = ("activation", "embed", "heads", "lstm_impl", "attention", "seq_len", "accumulate_steps", "test_every_epoch", "optimizer", "momentum",
          "nesterov", "fused_optimizer", "schedule", "decay_rate", "decay_steps", "warmup_steps", "dropout", "l1", "l2",
          "norm", "augment", "label_smoothing", "checkpoint_every", "keep", "restore", "compute_dtype", "on_nonfinite", "devices", "fsdp")


def is_detection(config: TrainConfig) -> bool:
    """Whether ``config`` names a detector or a detection data set (then this module trains it)."""
    from jdl import data
    from jdl.cli.flags import DETECTION_MODELS

    return config.model in DETECTION_MODELS or config.dataset in data.DETECTION_LOADERS


def detection_settings(config: TrainConfig):
    """The ``jdl.detection.train.TrainConfig`` of the flags, over the detector's ``zoo.SETTINGS``."""
    from jdl.detection import zoo
    from jdl.detection.train import TrainConfig as DetectionTrainConfig

    base = zoo.SETTINGS.get(config.model, DetectionTrainConfig())
    changes = {"epochs": config.epochs, "batch_size": config.batch_size, "seed": config.seed,
               "patience": config.early_stopping_patience}
    if config.learning_rate is not None:
        changes["learning_rate"] = config.learning_rate
    if config.weight_decay:
        changes["weight_decay"] = config.weight_decay
    return dataclasses.replace(base, **changes)


def load_detection_splits(config: TrainConfig):
    """(train, validation or None, test) of the detection set, validation carved from train (the
    first ``--train_size`` examples of train when given)."""
    from jdl import data
    from jdl.cli.data import first

    train = first(data.load(config.dataset, "train", config.data_dir, validation_fraction=config.validation_fraction),
                  config.train_size)
    validation = (data.load(config.dataset, "validation", config.data_dir,
                            validation_fraction=config.validation_fraction)
                  if config.validation_fraction > 0 else None)
    return train, validation, data.load(config.dataset, "test", config.data_dir)


def write_predictions(path: str, detector, params, state, test, n: int = 12) -> None:
    """predictions.png: the first ``n`` test images, ground truth dashed, detections solid."""
    from jdl.data.shapes import CLASSES
    from jdl.detection import as_metric_input
    from jdl.detection.plot import prediction_grid
    from jdl.detection.train import predict_all

    x, y = test[0][:n], test[1][:n]
    dets, _ = predict_all(detector, params, state, x, len(x))
    fig = prediction_grid(x, y, as_metric_input(dets), CLASSES, n_cols=6)
    fig.savefig(path, dpi=110)


def detection_command(config: TrainConfig):
    """Train, evaluate on the test set once, write metrics.jsonl, summary.json and
    predictions.png into the workdir and print one line; returns (TrainResult, test scores, workdir)."""
    from jdl import data
    from jdl.cli.flags import DETECTION_MODELS
    from jdl.data.shapes import CLASSES
    from jdl.detection import zoo
    from jdl.detection.train import evaluate, train
    from jdl.train import runlog, writers

    if config.model not in DETECTION_MODELS or config.dataset not in data.DETECTION_LOADERS:
        raise app.UsageError(f"--model={config.model} does not read --dataset={config.dataset}: the detection "
                             f"sets ({', '.join(data.DETECTION_LOADERS)}) go with the detectors "
                             f"({', '.join(DETECTION_MODELS)}), and only with them")
    refuse_unread(config, UNREAD, "detectors train with AdamW under a warmup-cosine schedule (jdl.detection.train) "
                  "and read --learning_rate, --weight_decay, --epochs, --batch_size, --seed, --hidden, "
                  "--early_stopping_patience and --validation_fraction")
    start = time.perf_counter()
    train_data, validation_data, test = load_detection_splits(config)
    widths = None if config.hidden == TrainConfig.hidden else config.hidden
    detector = zoo.build(config.model, len(CLASSES), widths)
    settings = detection_settings(config)
    workdir = config.workdir or os.path.join("runs", f"{config.model}-{config.dataset}-{time.strftime('%Y%m%d-%H%M%S')}")
    os.makedirs(workdir, exist_ok=True)
    log = writers.jsonl_writer(os.path.join(workdir, "metrics.jsonl"), [])
    result = train(detector, train_data, validation_data, len(CLASSES), settings, callbacks=[log])
    scores = evaluate(detector, result.params, result.state, test, len(CLASSES), settings.eval_batch_size)
    test_record = {**scores, "ap50": dict(zip(CLASSES, scores["ap50"]))}
    record = {**config.record(), "detection": dataclasses.asdict(settings)}
    writers.write_summary(os.path.join(workdir, "summary.json"), result.history,
                          wall_time_s=time.perf_counter() - start,
                          steps=result.history[-1]["step"] if result.history else 0, config=record,
                          git_commit=runlog.git_commit(), checkpoint=None, best_epoch=result.best_epoch,
                          test=test_record)
    write_predictions(os.path.join(workdir, "predictions.png"), detector, result.params, result.state, test)
    print(f"{config.model} on {config.dataset}: test mAP@0.5 {scores['map50']:.4f}, mAP@[.5:.95] "
          f"{scores['map']:.4f} (best epoch {result.best_epoch}), {time.perf_counter() - start:.1f} s; "
          f"results in {workdir}")
    return result, test_record, workdir
