"""``fit``: the supervised training loop, composed of the pieces of ``jdl.train`` — the step
(``make_step`` on ``supervised``), the epoch iterator and ``LoopState`` (``loop``), evaluation,
``EarlyStopping``, the checkpoint policy (``Saver`` on orbax), the writers and, with a mesh,
data-parallel placement (``jdl.distributed``)."""

from __future__ import annotations

import os
import time
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
from tqdm.auto import tqdm

from jdl.core import Module
from jdl.optim.base import GradientTransformation
from jdl.train import fit_setup, nonfinite, runlog, writers
from jdl.train.epochs import Loop, Run, run_epochs
from jdl.train.evaluate import evaluate, make_eval_step
from jdl.train.loop import LoopState
from jdl.train.plots import plot_history
from jdl.train.saver import Saver
from jdl.train.state import TrainState
from jdl.train.step import make_step
from jdl.train.supervised import Loss, supervised

Data = tuple[np.ndarray, np.ndarray]


class FitResult(NamedTuple):
    """What ``fit`` returns: the final ``TrainState`` (the best epoch's params and state under
    early stopping), the per-epoch history (list of dicts), and the test metrics measured once
    at the end (``None`` without ``test_data``)."""

    train_state: TrainState
    history: list[dict]
    test: dict | None = None


def fit(model: Module, loss_fn: Loss, optimizer: GradientTransformation, train_data: Data,
        validation_data: Data | None = None, *, test_data: Data | None = None, epochs: int = 10,
        batch_size: int = 64, seed: int = 0, workdir: str | os.PathLike | None = None,
        config: dict | None = None, eval_batch_size: int = 256, progress: bool = True,
        callbacks: Sequence[Callable[[int, dict, TrainState], None]] = (),
        penalty: Callable[[Any], Any] | None = None, augment: Callable[[Any, Any], Any] | None = None,
        early_stopping_patience: int | None = None, early_stopping_metric: str = "validation_loss",
        checkpoint_every: int | None = None, keep: int = 3, restore: str | os.PathLike | None = None,
        on_nonfinite: str | None = "stop", tensorboard: bool = True, eval_loss_fn: Loss | None = None,
        compute_dtype: Any = None, mesh: Any = None, fsdp: bool = False, accumulate_steps: int = 1,
        test_every_epoch: bool = False) -> FitResult:
    """Train ``model`` for ``epochs`` passes over ``train_data`` with minibatch steps

        θ ← θ + optimizer.update(∇_θ [loss(model.apply(θ, x_b), y_b) + penalty(θ)])

    evaluating on ``validation_data`` after every epoch and on ``test_data`` once, at the end
    (into ``FitResult.test`` and summary.json; ``test_every_epoch=True`` adds per-epoch
    ``test_*`` records, for plots only). Decisions use validation only: early stopping
    (``early_stopping_patience=P`` on ``early_stopping_metric``; the best epoch's params and
    state are returned) and the best checkpoint kept.

    Each epoch visits the examples in a seeded order and drops the last, smaller batch (no
    recompilation). ``augment(key, x)`` and ``penalty(θ)`` enter the step; ``compute_dtype``
    is mixed precision (``apply_in``); ``accumulate_steps=K`` averages the gradients of K
    microbatches (``make_step``); ``eval_loss_fn`` is the loss reported on validation and test.
    ``mesh`` (``jdl.distributed.data_mesh()``): data-parallel, batches sharded over its
    ``data`` axis (each process loads its rows), params and optimizer state replicated, or
    with ``fsdp=True`` sharded over the same axis (``jdl.distributed.shard_params``).

    A ``workdir`` (process 0) gets metrics.jsonl, summary.json, curves.png and TensorBoard
    events; ``callbacks`` are called as ``cb(epoch, record, train_state)``. With
    ``checkpoint_every=N`` (``Saver``) a run writes checkpoints every N steps, at the best
    epoch, at the end, on SIGINT/SIGTERM and on an error, keeps the last ``keep`` and the
    best, and a second call on the same workdir resumes bit-identical; ``restore=PATH`` starts
    from another run's params. ``on_nonfinite='stop'`` raises ``NonFiniteError`` naming the
    step and param that went NaN/±∞, ``'skip'`` skips such steps, ``None`` checks nothing.

    Shapes: data = (x (N, ...), y (N, ...)); x's shape after the batch axis is the model's.
    Returns: ``FitResult(train_state, history, test)``.
    """
    data = fit_setup.check_data(train_data, validation_data, test_data, epochs=epochs, batch_size=batch_size,
                                accumulate_steps=accumulate_steps, checkpoint_every=checkpoint_every,
                                keep=keep, workdir=workdir)
    stopping = fit_setup.check_stopping(early_stopping_metric, early_stopping_patience, data.validation)
    start_time = time.perf_counter()
    place = fit_setup.placement(mesh, data.batch_size, eval_batch_size, fsdp)
    ts = fit_setup.init_state(model, optimizer, data, seed, restore)
    step = make_step(supervised(model, loss_fn, augment=augment, compute_dtype=compute_dtype), optimizer,
                     penalty=penalty, on_nonfinite=on_nonfinite, accumulate_steps=accumulate_steps)
    measure = _measure(make_eval_step(model, eval_loss_fn or loss_fn, compute_dtype), place)
    config, commit = config or {}, runlog.git_commit() if workdir is not None else None
    order = fit_setup.data_order(data, seed)
    saver = Saver(workdir, checkpoint_every, keep, order, config, commit) if checkpoint_every else None
    ts, loop_state, best = place.state(ts), LoopState(0, 0, {}, [], stopping), None
    if saver is not None:
        ts, loop_state, best = saver.resume(ts, loop_state)
    run = Run(ts, loop_state, best)
    out = fit_setup.open_writers(workdir if place.primary else None, run.loop.history, config, commit,
                                 run.t, tensorboard)
    total = epochs * order["steps_per_epoch"]
    bar = tqdm(total=total, initial=min(run.t, total), disable=not (progress and place.primary),
               unit="step", dynamic_ncols=True)
    splits = {"validation": data.validation, "test": data.test if test_every_epoch else None}
    loop = Loop(step, lambda ts: _per_epoch(measure, splits, ts), data.train, data.batch_size, seed, epochs,
                order["steps_per_epoch"], place.put, saver,
                nonfinite.Guard(nonfinite.flag_names(ts.params)) if on_nonfinite == "stop" else None,
                [*out.writers, writers.progress_writer(bar)], callbacks, lambda: bar.update(1))
    try:
        run_epochs(loop, run)
    finally:
        bar.close()
        out.close()
    if run.best is not None:
        run.ts = run.ts._replace(params=run.best[0], state=run.best[1])
    test = measure(*data.test, run.ts) if data.test is not None else None
    if workdir is not None and place.primary:
        _finish(workdir, run, test, saver, config, commit, time.perf_counter() - start_time)
    return FitResult(run.ts, run.loop.history, test)


def _measure(eval_step: Callable, place: fit_setup.Placement) -> Callable:
    """``measure(x, y, ts)``: the mean metrics of ``ts`` over a whole split."""
    return lambda x, y, ts: evaluate(eval_step, ts.params, ts.state, x, y, place.eval_batch_size, place.eval_put)


def _per_epoch(measure: Callable, splits: dict, ts: TrainState) -> dict:
    """The epoch's evaluation entries: ``<split>_<metric>`` for each split given."""
    return {f"{name}_{k}": v for name, split in splits.items() if split is not None
            for k, v in measure(*split, ts).items()}


def _finish(workdir: Any, run: Run, test: dict | None, saver: Saver | None, config: dict, commit: str | None,
            wall: float) -> None:
    """summary.json and curves.png of a finished run."""
    history = run.loop.history
    writers.write_summary(os.path.join(workdir, "summary.json"), history, wall_time_s=wall, steps=run.t,
                          config=config, git_commit=commit, checkpoint=saver.last_good if saver else None,
                          best_epoch=run.loop.stopping.best_epoch if run.best is not None else None, test=test)
    if history:
        plot_history(history, os.path.join(workdir, "curves.png"), title=str(config.get("model", "")))
