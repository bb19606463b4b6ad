"""The training loop around the pure step: epochs, evaluation, logging, progress, plots."""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from jdl.core import Module
from jdl.data.batching import batches, num_batches
from jdl.optim.base import GradientTransformation
from jdl.train.plots import plot_history
from jdl.train.state import TrainState, init_train_state
from jdl.train.step import LossFn, evaluate, make_eval_step, make_step


class FitResult(NamedTuple):
    """What ``fit`` returns: the final ``TrainState`` and the per-epoch history (list of dicts)."""

    train_state: TrainState
    history: list[dict]


def _check_data(name: str, data: Any) -> tuple[np.ndarray, np.ndarray]:
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError(f"fit: {name} must be a pair (x, y) of arrays, got {type(data).__name__}")
    x, y = np.asarray(data[0]), np.asarray(data[1])
    if len(x) != len(y):
        raise ValueError(f"fit: {name} has {len(x)} inputs but {len(y)} targets")
    return x, y


def fit(
    model: Module,
    loss_fn: LossFn,
    optimizer: GradientTransformation,
    train_data: tuple[np.ndarray, np.ndarray],
    test_data: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    seed: int = 0,
    workdir: str | os.PathLike | None = None,
    config: dict | None = None,
    eval_batch_size: int = 256,
    progress: bool = True,
    callbacks: Sequence[Callable[[int, dict, TrainState], None]] = (),
    penalty: Callable[[Any], Any] | None = None,
    augment: Callable[[Any, Any], Any] | None = None,
    early_stopping_patience: int | None = None,
    early_stopping_metric: str = "test_loss",
) -> FitResult:
    """Train ``model`` for ``epochs`` passes over ``train_data`` with minibatch steps

        θ ← θ + optimizer.update(∇_θ loss(model.apply(θ, x_b), y_b))

    evaluating on ``test_data`` after every epoch.

    Each epoch visits the training examples in a seeded order (``jdl.data.epoch_order``) and
    drops the last, smaller batch so the jitted step never recompiles. With a ``workdir``, it
    writes ``metrics.jsonl`` (one JSON line per epoch), ``summary.json`` (final metrics, wall
    time, config) and ``curves.png``. ``callbacks`` are called as ``cb(epoch, record, ts)``.

    ``penalty(params)`` is added to the loss (``jdl.regularizers``); ``augment(key, x)`` runs
    inside the jitted step on each batch. Early stopping: with ``early_stopping_patience=P``,
    training stops once ``early_stopping_metric`` (lower is better for names ending in
    ``loss``, higher otherwise) has not improved for P epochs, and the returned train state
    holds the params and state of the best epoch (recorded as ``best_epoch`` in summary.json).

    Shapes: train_data = (x (N, ...), y (N, ...)); x's shape after the batch axis is the model's.
    Returns: ``FitResult(train_state, history)``, history a list of per-epoch dicts.
    """
    x, y = _check_data("train_data", train_data)
    test = _check_data("test_data", test_data) if test_data is not None else None
    if epochs < 0 or batch_size < 1:
        raise ValueError(f"fit: epochs must be >= 0 and batch_size >= 1, got {epochs}, {batch_size}")
    batch_size = min(batch_size, len(x))
    steps_per_epoch = num_batches(len(x), batch_size)

    start_time = time.perf_counter()
    ts = init_train_state(model, optimizer, jax.ShapeDtypeStruct((batch_size, *x.shape[1:]), x.dtype), seed)
    step = make_step(model, loss_fn, optimizer, penalty=penalty, augment=augment)
    eval_step = make_eval_step(model, loss_fn)
    if workdir is not None:
        os.makedirs(workdir, exist_ok=True)
        open(os.path.join(workdir, "metrics.jsonl"), "w").close()

    history: list[dict] = []
    sign = 1.0 if early_stopping_metric.endswith("loss") else -1.0  # minimize sign·metric
    best: tuple[float, int, Any] | None = None  # (sign·metric, epoch, (params, state))
    bar = tqdm(total=epochs * steps_per_epoch, disable=not progress, unit="step", dynamic_ncols=True)
    try:
        for epoch in range(epochs):
            sums: dict[str, Any] = {}
            for xb, yb in batches(x, y, batch_size, seed=seed, epoch=epoch):
                ts, metrics = step(ts, (xb, yb))
                sums = metrics if not sums else jax.tree.map(lambda a, b: a + b, sums, metrics)
                bar.update(1)
            record: dict[str, Any] = {"epoch": epoch + 1, "step": int(ts.step)}
            record.update({f"train_{k}": float(v) / steps_per_epoch for k, v in jax.device_get(sums).items()})
            if test is not None:
                record.update({f"test_{k}": v for k, v in
                               evaluate(eval_step, ts.params, ts.state, *test, eval_batch_size).items()})
            history.append(record)
            bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k.startswith(("train_", "test_"))})
            if workdir is not None:
                with open(os.path.join(workdir, "metrics.jsonl"), "a") as f:
                    f.write(json.dumps(record) + "\n")
            for cb in callbacks:
                cb(epoch + 1, record, ts)
            if early_stopping_patience is not None:
                if early_stopping_metric not in record:
                    raise ValueError(f"fit: early_stopping_metric={early_stopping_metric!r} is not "
                                     f"among the metrics {sorted(record)}")
                value = sign * record[early_stopping_metric]
                if best is None or value < best[0]:
                    best = (value, epoch + 1, jax.tree.map(jnp.copy, (ts.params, ts.state)))
                elif epoch + 1 - best[1] >= early_stopping_patience:
                    break
    finally:
        bar.close()

    wall = time.perf_counter() - start_time
    best_epoch = None
    if best is not None:
        best_epoch = best[1]
        ts = ts._replace(params=best[2][0], state=best[2][1])
    if workdir is not None:
        summary = {"final": history[-1] if history else {}, "wall_time_s": wall,
                   "epochs": len(history), "steps": int(ts.step), "config": config or {}}
        if best_epoch is not None:
            summary["best_epoch"] = best_epoch
            summary["best"] = history[best_epoch - 1]
        with open(os.path.join(workdir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
        if history:
            plot_history(history, os.path.join(workdir, "curves.png"),
                         title=str((config or {}).get("model", "")))
    return FitResult(ts, history)
