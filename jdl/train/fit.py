"""The training loop around the pure step: epochs, evaluation, checkpoints and exact resume,
non-finite guards, signals, logging (JSON lines, TensorBoard), progress, plots."""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from tqdm.auto import tqdm

from jdl.core import Module, output_struct
from jdl.data.batching import batches, num_batches
from jdl.data.validate import check_examples, check_labels
from jdl.optim.base import GradientTransformation
from jdl.train import checkpoint as ckpt
from jdl.train import nonfinite, resume, runlog
from jdl.train.plots import plot_history
from jdl.train.signals import GracefulStop
from jdl.train.state import TrainState, init_train_state
from jdl.train.step import LossFn, evaluate, make_eval_step, make_step


NONFINITE_CHECK_EVERY = 100  # steps between checks of the non-finite flags (one device sync each)


class FitResult(NamedTuple):
    """What ``fit`` returns: the final ``TrainState`` and the per-epoch history (list of dicts)."""

    train_state: TrainState
    history: list[dict]


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
    checkpoint_every: int | None = None,
    keep: int = 3,
    restore: str | os.PathLike | None = None,
    on_nonfinite: str | None = "stop",
    tensorboard: bool = True,
    eval_loss_fn: LossFn | None = None,
    compute_dtype: Any = None,
) -> FitResult:
    """Train ``model`` for ``epochs`` passes over ``train_data`` with minibatch steps

        θ ← θ + optimizer.update(∇_θ loss(model.apply(θ, x_b), y_b))

    evaluating on ``test_data`` after every epoch.

    Each epoch visits the training examples in a seeded order (``jdl.data.epoch_order``) and
    drops the last, smaller batch so the jitted step never recompiles. With a ``workdir``, it
    writes ``metrics.jsonl`` (one JSON line per epoch), ``summary.json`` (final metrics, wall
    time, config, git commit), ``curves.png`` and, when tensorboard is installed and
    ``tensorboard=True``, event files in ``workdir/tb``. ``callbacks`` are called as
    ``cb(epoch, record, ts)``.

    ``penalty(params)`` is added to the loss (``jdl.regularizers``); ``augment(key, x)`` runs
    inside the jitted step on each batch. Early stopping: with ``early_stopping_patience=P``,
    training stops once ``early_stopping_metric`` (lower is better for names ending in
    ``loss``, higher otherwise) has not improved for P epochs, and the returned train state
    holds the params and state of the best epoch (recorded as ``best_epoch`` in summary.json).

    Checkpoints (``checkpoint_every=N`` with a ``workdir``): the whole ``TrainState``, the data
    position, the epoch's running sums, the history and the config go to
    ``workdir/checkpoints/<step>`` every N steps, at the end of an epoch whose
    ``early_stopping_metric`` is the best so far, at the end, on SIGINT/SIGTERM (then the
    signal goes on) and when a callback or the evaluation raises; the last ``keep`` and the
    best are kept. Calling ``fit`` again with the same workdir continues from the newest
    complete checkpoint and ends bit-identical to an uninterrupted run. ``restore=PATH`` starts
    from the params and state of another run's checkpoint (fine-tuning; fresh optimizer).

    ``on_nonfinite='stop'`` (default) raises ``NonFiniteError`` naming the first step whose
    loss, gradient or new params are NaN/±∞ and the first param path affected (checked every
    100 steps, at each epoch's end and before every checkpoint, so a bad state is never
    saved); ``'skip'`` skips such steps inside the jitted step; ``None`` checks nothing. Data
    are checked once before training: finite features, integer labels within the model's
    classes, one shape for all examples (``jdl.data.validate``).

    ``eval_loss_fn`` is the loss reported on ``test_data`` (default ``loss_fn``): give the plain
    loss when ``loss_fn`` has training-only terms, such as label smoothing, so that the test loss
    and early stopping measure the model, not the smoothed target.

    ``compute_dtype`` (e.g. ``jnp.bfloat16``): mixed precision as in ``make_step``; params,
    optimizer state and checkpoints stay float32.

    Shapes: train_data = (x (N, ...), y (N, ...)); x's shape after the batch axis is the model's.
    Returns: ``FitResult(train_state, history)``, history a list of per-epoch dicts.
    """
    x, y = check_examples("fit: train_data", train_data)
    test = check_examples("fit: test_data", test_data) if test_data is not None else None
    if epochs < 0 or batch_size < 1:
        raise ValueError(f"fit: epochs must be >= 0 and batch_size >= 1, got {epochs}, {batch_size}")
    if test is not None and test[0].shape[1:] != x.shape[1:]:
        raise ValueError(f"fit: test_data examples have shape {test[0].shape[1:]} but train_data's "
                         f"have {x.shape[1:]}")
    if checkpoint_every is not None and (workdir is None or checkpoint_every < 1 or keep < 1):
        raise ValueError(f"fit: checkpoint_every={checkpoint_every} needs a workdir, and it and "
                         f"keep={keep} must be >= 1")
    nonfinite.check_mode(on_nonfinite)
    batch_size = min(batch_size, len(x))
    steps_per_epoch = num_batches(len(x), batch_size)

    start_time = time.perf_counter()
    x_struct = jax.ShapeDtypeStruct((batch_size, *x.shape[1:]), x.dtype)
    ts = init_train_state(model, optimizer, x_struct, seed)
    _check_targets(model, ts, x_struct, "fit: train_data y", y)
    if test is not None:
        _check_targets(model, ts, x_struct, "fit: test_data y", test[1])
    step = make_step(model, loss_fn, optimizer, penalty=penalty, augment=augment, on_nonfinite=on_nonfinite,
                     compute_dtype=compute_dtype)
    eval_step = make_eval_step(model, loss_fn if eval_loss_fn is None else eval_loss_fn, compute_dtype)
    if restore is not None:
        loaded = ckpt.restore(restore, ts, params_only=True).train_state
        ts = ts._replace(params=loaded.params, state=loaded.state)

    ckpt_dir = os.path.join(workdir, ckpt.CHECKPOINTS) if checkpoint_every is not None else None
    history: list[dict] = []
    sums: dict[str, Any] = {}
    sign = 1.0 if early_stopping_metric.endswith("loss") else -1.0  # minimize sign·metric
    best: tuple[float, int, Any] | None = None  # (sign·metric, epoch, (params, state))
    epoch0, batch0, stopped_early, last_good = 0, 0, False, None
    if ckpt_dir is not None and ckpt.steps(ckpt_dir):
        found = ckpt.restore(ckpt_dir, ts)
        ts, meta, last_good = found.train_state, found.meta, found.path
        resume.check_compatible(meta["position"], resume.position(0, 0, steps_per_epoch, batch_size, len(x), seed),
                                found.path)
        epoch0, batch0 = meta["position"]["epoch"], meta["position"]["batch"]
        sums, history = resume.sums_from_json(meta["sums"]), meta["history"]
        stopped_early = meta.get("stopped_early", False)
        kept = resume.best_epoch(history, early_stopping_metric, sign)
        if early_stopping_patience is not None and kept is not None:
            at_best = ckpt.restore(ckpt_dir, ts, step=kept[1] * steps_per_epoch).train_state
            best = (kept[0], kept[1], (at_best.params, at_best.state))

    commit, board = None, None
    if workdir is not None:
        os.makedirs(workdir, exist_ok=True)
        with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in history)
        commit = runlog.git_commit()
        board = runlog.TensorBoard.open(os.path.join(workdir, "tb")) if tensorboard else None
        if board is not None:
            board.text("config", config or {}, int(ts.step))
            board.text("git_commit", str(commit), int(ts.step))

    t = int(ts.step)
    saved_step = t if last_good is not None else None
    pending: list[tuple[int, Any]] = []  # (step, finite flags on the device) not yet checked
    names = nonfinite.flag_names(ts.params) if on_nonfinite == "stop" else []
    pos = (epoch0, batch0)

    def save(metric: dict | None = None) -> None:
        nonlocal last_good, saved_step
        nonfinite.raise_first(pending, names, last_good)  # never write a non-finite state
        meta = {"config": config or {}, "git_commit": commit, "metric": metric,
                "position": resume.position(*pos, steps_per_epoch, batch_size, len(x), seed),
                "sums": resume.sums_to_json(sums), "history": history, "stopped_early": stopped_early}
        last_good = ckpt.save(ckpt_dir, ts, meta, keep=keep, replace=saved_step == t)
        saved_step = t

    in_step = False
    bar = tqdm(total=epochs * steps_per_epoch, initial=min(t, epochs * steps_per_epoch),
               disable=not progress, unit="step", dynamic_ncols=True)
    with GracefulStop() if ckpt_dir is not None else contextlib.nullcontext() as stop:
        try:
            for epoch in range(epoch0, epochs):
                if stopped_early:
                    break
                b = pos[1] if epoch == pos[0] else 0
                for xb, yb in batches(x, y, batch_size, seed=seed, epoch=epoch, start=b):
                    in_step = True
                    ts, metrics = step(ts, (xb, yb))
                    ok = metrics.pop("ok", None)
                    sums = metrics if not sums else jax.tree.map(lambda a, c: a + c, sums, metrics)
                    t, b, pos, in_step = t + 1, b + 1, (epoch, b + 1), False
                    if on_nonfinite == "stop":
                        pending.append((t, ok))
                        if len(pending) >= NONFINITE_CHECK_EVERY:
                            nonfinite.raise_first(pending, names, last_good)
                    bar.update(1)
                    if ckpt_dir is not None and t % checkpoint_every == 0 and b < steps_per_epoch:
                        save()
                    if stop is not None and stop.requested:
                        save()
                        stop.deliver()
                nonfinite.raise_first(pending, names, last_good)
                record = _train_record(epoch, t, sums, steps_per_epoch)
                if test is not None:
                    record.update({f"test_{k}": v for k, v in
                                   evaluate(eval_step, ts.params, ts.state, *test, eval_batch_size).items()})
                history.append(record)
                sums, pos = {}, (epoch + 1, 0)
                bar.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k.startswith(("train_", "test_"))})
                if workdir is not None:
                    with open(os.path.join(workdir, "metrics.jsonl"), "a") as f:
                        f.write(json.dumps(record) + "\n")
                if board is not None:
                    board.scalars(t, record)
                if early_stopping_patience is not None:
                    if early_stopping_metric not in record:
                        raise ValueError(f"fit: early_stopping_metric={early_stopping_metric!r} is not "
                                         f"among the metrics {sorted(record)}")
                    value = sign * record[early_stopping_metric]
                    if best is None or value < best[0]:
                        best = (value, epoch + 1, jax.tree.map(jnp.copy, (ts.params, ts.state)))
                    elif epoch + 1 - best[1] >= early_stopping_patience:
                        stopped_early = True
                if ckpt_dir is not None:
                    top = resume.best_epoch(history, early_stopping_metric, sign)
                    improved = top is not None and top[1] == epoch + 1
                    if t % checkpoint_every == 0 or improved or epoch == epochs - 1 or stopped_early:
                        save(_metric(record, early_stopping_metric, sign))
                for cb in callbacks:
                    cb(epoch + 1, record, ts)
            if ckpt_dir is not None and saved_step != t:
                save()
            if stop is not None and stop.requested:  # arrived after the last step
                stop.deliver()
        except BaseException as e:
            consistent = not in_step and not isinstance(e, nonfinite.NonFiniteError)
            if ckpt_dir is not None and consistent and saved_step != t:
                try:
                    save()  # a failing callback or evaluation, or an interrupt: keep the progress
                except Exception as inner:  # noqa: BLE001 - report the original error, not this one
                    logging.warning("fit: could not save a checkpoint after %r: %r", e, inner)
            raise
        finally:
            bar.close()
            if board is not None:
                board.close()

    wall = time.perf_counter() - start_time
    best_epoch = None
    if best is not None:
        best_epoch = best[1]
        ts = ts._replace(params=best[2][0], state=best[2][1])
    if workdir is not None:
        summary = {"final": history[-1] if history else {}, "wall_time_s": wall,
                   "epochs": len(history), "steps": t, "config": config or {},
                   "git_commit": commit, "checkpoint": last_good}
        if best_epoch is not None:
            summary["best_epoch"] = best_epoch
            summary["best"] = history[best_epoch - 1]
        with open(os.path.join(workdir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
        if history:
            plot_history(history, os.path.join(workdir, "curves.png"),
                         title=str((config or {}).get("model", "")))
    return FitResult(ts, history)


def _check_targets(model: Module, ts: TrainState, x: jax.ShapeDtypeStruct, name: str, y: np.ndarray) -> None:
    """Integer targets with one fewer axis than the model's output are class labels: their
    per-example shape must match and each must lie in 0..K−1 (K = the output's last axis)."""
    out = output_struct(model, ts.params, ts.state, x)
    if np.issubdtype(y.dtype, np.integer) and out.ndim == y.ndim + 1:
        if tuple(y.shape[1:]) != tuple(out.shape[1:-1]):
            raise ValueError(f"{name}: labels have shape {y.shape[1:]} per example but the model "
                             f"outputs {out.shape[1:]} (expected labels of shape {out.shape[1:-1]})")
        check_labels(name, y, out.shape[-1])


def _train_record(epoch: int, t: int, sums: dict, steps_per_epoch: int) -> dict:
    """The epoch's record: train metrics are means over its steps (over the steps not skipped)."""
    totals = jax.device_get(sums)
    record: dict[str, Any] = {"epoch": epoch + 1, "step": t}
    if "skipped" in totals:
        skipped = int(totals.pop("skipped"))
        n = steps_per_epoch - skipped
        record.update({f"train_{k}": float(v) / n if n else float("nan") for k, v in totals.items()})
        record["train_skipped_steps"] = skipped
    else:
        record.update({f"train_{k}": float(v) / steps_per_epoch for k, v in totals.items()})
    return record


def _metric(record: dict, name: str, sign: float) -> dict | None:
    """The checkpoint's validation metric {'name', 'value', 'mode'}, if the record has it."""
    if name not in record:
        return None
    return {"name": name, "value": record[name], "mode": "min" if sign > 0 else "max"}
