"""One training loop and one evaluation for every ``Detector`` (``jdl.detection.detector``).

The step is ``jdl.train.make_step`` on the detector's own loss: with a batch b of images and
padded targets and the step's key k,

    ℓ, (state', m) = detector.loss(θ, state, flip(images_b, targets_b), k)
    θ ← θ + optimizer.update(∇_θ ℓ)

(``flip``: each image mirrored left–right with probability ½, its boxes with it, x ↦ W − x).
After every epoch the detector predicts on the validation set and ``evaluate`` scores it with
``jdl.metrics.mean_average_precision``; the epoch with the best validation mAP@0.5 is the one
returned (``jdl.train.stopping``), so the test set is never looked at while training.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jdl.detection.detector import Detections, Detector, as_metric_input

Data = tuple[np.ndarray, np.ndarray]  # images (N, H, W, 3) float32, targets (N,) records (jdl.data.shapes)


@dataclass(frozen=True)
class TrainConfig:
    """``epochs`` passes in batches of ``batch_size``; AdamW with a linear warmup over
    ``warmup_epochs`` to ``learning_rate``, then cosine decay to 0, and decoupled
    ``weight_decay``; left–right flips when ``flip``; validation every ``eval_every`` epochs
    (and at the last) in batches of ``eval_batch_size``; patience in epochs (None: never stop)."""
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    flip: bool = True
    seed: int = 0
    eval_every: int = 1
    eval_batch_size: int = 100
    patience: int | None = None


class TrainResult(NamedTuple):
    """The best epoch's params and state, the per-epoch records and the best epoch (1-based)."""
    params: Any
    state: Any
    history: list[dict]
    best_epoch: int | None


def optimizer_for(config: TrainConfig, steps_per_epoch: int):
    """AdamW under ``warmup_cosine_decay_schedule``: η_t rises linearly from 0 to η over the
    warmup steps, then η_t = η·½(1 + cos(π·t'/T')) over the remaining T' steps."""
    from jdl import optim

    total = max(config.epochs * steps_per_epoch, 2)
    warmup = min(max(int(config.warmup_epochs * steps_per_epoch), 1), total - 1)
    lr = optim.warmup_cosine_decay_schedule(0.0, config.learning_rate, warmup, total)
    return optim.adamw(lr, weight_decay=config.weight_decay)


def flip_batch(key: jax.Array, images: jax.Array, targets: dict) -> tuple[jax.Array, dict]:
    """Mirror each image left–right with probability ½ and its boxes with it:
    (x1, y1, x2, y2) ↦ (W − x2, y1, W − x1, y2).
    Shapes: images (B, H, W, C), targets boxes (B, K, 4) → the same."""
    width = images.shape[2]
    flip = jax.random.bernoulli(key, 0.5, (images.shape[0],))  # (B,)
    images = jnp.where(flip[:, None, None, None], images[:, :, ::-1], images)
    b = targets["boxes"]
    mirrored = jnp.stack([width - b[..., 2], b[..., 1], width - b[..., 0], b[..., 3]], axis=-1)
    return images, {**targets, "boxes": jnp.where(flip[:, None, None], mirrored, b)}


def make_detector_step(detector: Detector, optimizer, flip: bool = True) -> Callable:
    """``jdl.train.make_step`` on ``detector.loss``: ``step(train_state, batch) -> (train_state,
    metrics)``, batch = {'images': (B, H, W, 3), 'targets': ``shapes.as_arrays`` dict}."""
    from jdl.train.step import make_step

    def loss_fn(params, state, batch, key):
        images, targets = batch["images"], batch["targets"]
        if flip:
            key, flip_key = jax.random.split(key)
            images, targets = flip_batch(flip_key, images, targets)
        return detector.loss(params, state, images, targets, key)

    return make_step(loss_fn, optimizer)


def predict_all(detector: Detector, params, state, images: np.ndarray, batch_size: int = 100,
                predict: Callable | None = None) -> tuple[Detections, float]:
    """``detector.predict`` over a whole set in fixed-size batches (the last one padded with
    zeros, so one compiled program serves all); returns the stacked ``Detections`` (N, D, ...)
    as numpy and the images per second of the timed batches (the first, which compiles, excluded
    when there are several)."""
    predict = predict or jax.jit(detector.predict)
    n = len(images)
    batch_size = min(batch_size, n)
    outs, seconds, timed = [], 0.0, 0
    for i, start in enumerate(range(0, n, batch_size)):
        xb = images[start:start + batch_size]
        pad = batch_size - len(xb)
        if pad:
            xb = np.concatenate([xb, np.zeros((pad, *xb.shape[1:]), xb.dtype)])
        t0 = time.perf_counter()
        out = jax.block_until_ready(predict(params, state, jnp.asarray(xb)))
        if i > 0 or n <= batch_size:
            seconds, timed = seconds + time.perf_counter() - t0, timed + len(xb) - pad
        outs.append(jax.tree.map(lambda a: np.asarray(a)[:batch_size - pad], out))
    dets = Detections(*(np.concatenate(parts) for parts in zip(*outs)))
    return dets, timed / max(seconds, 1e-9)


def evaluate(detector: Detector, params, state, data: Data, n_classes: int, batch_size: int = 100,
             predict: Callable | None = None) -> dict:
    """Score the detector on ``data`` with ``jdl.metrics.mean_average_precision``:

        map50 = mAP at IoU 0.5 (VOC, all-point AP),
        map   = mean over IoU ∈ {0.5, 0.55, …, 0.95} of mAP (COCO, 101-point AP),

    plus ``ap50`` (per-class AP at 0.5, a list), ``map75`` and ``images_per_s`` (predict only).
    Shapes: data = (images (N, H, W, 3), targets (N,) records of ``jdl.data.shapes``)."""
    from jdl.data.shapes import unpad
    from jdl.metrics import COCO_IOU_THRESHOLDS, mean_average_precision

    images, targets = data
    dets, speed = predict_all(detector, params, state, images, batch_size, predict)
    found, truth = as_metric_input(dets), unpad(targets)
    voc = mean_average_precision(found, truth, n_classes, (0.5,), "all_point")
    coco = mean_average_precision(found, truth, n_classes, COCO_IOU_THRESHOLDS, "101_point")
    return {"map50": voc["map"], "map": coco["map"], "map75": float(coco["map_per_threshold"][5]),
            "ap50": [float(a) for a in voc["ap"][0]], "images_per_s": speed,
            "detections_per_image": float(dets.valid.sum(axis=1).mean())}


def _epoch(step, ts, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, epoch: int):
    """One pass of ``step`` over the shuffled, batched training data; returns the state and the
    mean of each step metric."""
    from jdl.data import batches
    from jdl.data.shapes import as_arrays

    metrics = []
    for xb, yb in batches(x, y, batch_size, seed=seed, epoch=epoch):
        ts, m = step(ts, {"images": jnp.asarray(xb), "targets": as_arrays(yb)})
        metrics.append(m)
    metrics = jax.device_get(metrics)
    return ts, {f"train_{k}": float(np.mean([m[k] for m in metrics])) for k in metrics[0]}


def train(detector: Detector, train_data: Data, validation_data: Data | None, n_classes: int,
          config: TrainConfig = TrainConfig(), optimizer=None,
          callbacks: Sequence[Callable[[int, dict, Any], None]] = ()) -> TrainResult:
    """Train ``detector`` on ``train_data`` (``make_detector_step``), score it on
    ``validation_data`` (``evaluate``) every ``config.eval_every`` epochs, and keep the epoch of
    best validation mAP@0.5 (the last epoch without validation data).

    ``optimizer`` defaults to ``optimizer_for(config, steps_per_epoch)``. Each callback is called
    as ``cb(epoch, record, train_state)`` (``jdl.train.writers.jsonl_writer`` fits), the record
    holding epoch, step, train_* (step metrics averaged over the epoch), validation_map50,
    validation_map, validation_map75 and seconds.
    Returns: ``TrainResult(params, state, history, best_epoch)``, params and state on the host.
    """
    from jdl.data.batching import num_batches
    from jdl.train import stopping
    from jdl.train.state import TrainState

    x, y = train_data
    if len(x) < config.batch_size:
        raise ValueError(f"detection.train: batch_size={config.batch_size} exceeds the {len(x)} training images")
    steps_per_epoch = num_batches(len(x), config.batch_size)
    optimizer = optimizer or optimizer_for(config, steps_per_epoch)
    init_key, run_key = jax.random.split(jax.random.key(config.seed))
    params, state = detector.init(init_key, jnp.asarray(x[:config.batch_size]))
    ts = TrainState(params, state, optimizer.init(params), jnp.zeros([], jnp.int32), run_key)
    step = make_detector_step(detector, optimizer, config.flip)
    predict = jax.jit(detector.predict)
    watch = stopping.early_stopping("validation_map50", config.patience, "max")
    history, best = [], None
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        ts, record = _epoch(step, ts, x, y, config.batch_size, config.seed, epoch - 1)
        record = {"epoch": epoch, "step": epoch * steps_per_epoch, **record}
        if validation_data is not None and (epoch % config.eval_every == 0 or epoch == config.epochs):
            scores = evaluate(detector, ts.params, ts.state, validation_data, n_classes,
                              config.eval_batch_size, predict)
            record.update({f"validation_{k}": scores[k] for k in ("map50", "map", "map75")})
            watch, improved = stopping.update(watch, epoch, record)
            if improved:
                best = jax.device_get((ts.params, ts.state))
        record["seconds"] = time.perf_counter() - start
        history.append(record)
        for cb in callbacks:
            cb(epoch, record, ts)
        if watch.stop:
            break
    if best is None:
        best = jax.device_get((ts.params, ts.state))
    return TrainResult(best[0], best[1], history, watch.best_epoch)
