"""``fit``: the supervised training loop, composed of the pieces of ``jdl.train`` — the step
(``make_step`` on ``supervised``), the epoch iterator and ``LoopState`` (``loop``), evaluation,
``EarlyStopping``, the checkpoint policy (``Saver`` on orbax), the writers and, with a mesh,
data-parallel placement (``jdl.distributed``)."""

from __future__ import annotations

import os
import time
from typing import Any, Callable, NamedTuple, Sequence

import jax
import numpy as np
from tqdm.auto import tqdm

from jdl.core import Module
from jdl.optim.base import GradientTransformation
from jdl.train import checkpoint as ckpt
from jdl.train import fit_setup, nonfinite, runlog, writers
from jdl.train.epochs import Loop, Run, run_epochs
from jdl.train.evaluate import evaluate, make_eval_step
from jdl.train.loop import LoopState
from jdl.train.plots import plot_history
from jdl.train.saver import Saver
from jdl.train.state import TrainState, init_train_state
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
        compute_dtype: Any = None, mesh: Any = None, accumulate_steps: int = 1,
        test_every_epoch: bool = False) -> FitResult:
    """Train ``model`` for ``epochs`` passes over ``train_data`` with minibatch steps

        θ ← θ + optimizer.update(∇_θ [loss(model.apply(θ, x_b), y_b) + penalty(θ)])

    evaluating on ``validation_data`` after every epoch and on ``test_data`` once, at the end.

    Decisions use the validation split only: early stopping (``early_stopping_patience=P``:
    stop once ``early_stopping_metric``, lower is better for names ending in 'loss', has not
    improved for P epochs, and return the best epoch's params and state) and the best
    checkpoint kept. The test set is evaluated once on the returned params, into
    ``FitResult.test`` and summary.json's ``test``; ``test_every_epoch=True`` also records
    ``test_*`` per epoch, for plots only (a decision on them would tune on the test set).

    Each epoch visits the training examples in a seeded order (``jdl.data.epoch_order``) and
    drops the last, smaller batch so the jitted step never recompiles. ``augment(key, x)`` runs
    inside the step; ``compute_dtype`` runs forward and backward in mixed precision (see
    ``jdl.train.apply_in``); ``accumulate_steps=K`` sums the gradients of K microbatches of
    batch_size/K (one step on the whole batch, in a K-th of the memory; see ``make_step``).
    ``eval_loss_fn`` is the loss reported on validation and test (default ``loss_fn``): the
    plain loss when ``loss_fn`` has training-only terms such as label smoothing.

    With a ``workdir`` (written by process 0 only): ``metrics.jsonl`` (a JSON line per epoch),
    ``summary.json``, ``curves.png``, TensorBoard events in ``tb/`` (``tensorboard=True`` and
    tensorboard installed). ``callbacks`` are called as ``cb(epoch, record, train_state)``.

    Checkpoints (``checkpoint_every=N`` with a ``workdir``): every N steps, at an epoch whose
    validation metric is the best so far, at the end, on SIGINT/SIGTERM (then the signal goes
    on) and when a callback or the evaluation raises; the last ``keep`` and the best are kept.
    Calling ``fit`` again on the same workdir continues from the newest complete checkpoint and
    ends bit-identical to an uninterrupted run. ``restore=PATH`` starts from the params and
    state of another run's checkpoint (fine-tuning; fresh optimizer).

    ``on_nonfinite='stop'`` raises ``NonFiniteError`` naming the first step whose loss or new
    params are NaN/±∞ and the first param path affected (checked every 100 steps, at each
    epoch's end and before every checkpoint, so a bad state is never saved); ``'skip'`` skips
    such steps inside the step; ``None`` checks nothing.

    ``mesh`` (``jdl.distributed.data_mesh()``): data-parallel — each global batch is sharded
    over the mesh's ``data`` axis (each process loads only its rows), params and optimizer
    state are replicated, BatchNorm statistics are over the global batch; the same jitted step.

    Shapes: data = (x (N, ...), y (N, ...)); x's shape after the batch axis is the model's.
    Returns: ``FitResult(train_state, history, test)``.
    """
    data = fit_setup.check_data(train_data, validation_data, test_data, epochs=epochs, batch_size=batch_size,
                                accumulate_steps=accumulate_steps, checkpoint_every=checkpoint_every,
                                keep=keep, workdir=workdir)
    stopping = fit_setup.check_stopping(early_stopping_metric, early_stopping_patience, data.validation)
    nonfinite.check_mode(on_nonfinite)
    start_time = time.perf_counter()
    place = fit_setup.placement(mesh, data.batch_size, eval_batch_size)
    x_struct = jax.ShapeDtypeStruct((data.batch_size, *data.train[0].shape[1:]), data.train[0].dtype)
    ts = init_train_state(model, optimizer, x_struct, seed)
    fit_setup.check_targets(model, ts, x_struct, data)
    if restore is not None:
        loaded = ckpt.restore(restore, ts, params_only=True).train_state
        ts = ts._replace(params=loaded.params, state=loaded.state)
    ts = place.state(ts)
    step = make_step(supervised(model, loss_fn, augment=augment, compute_dtype=compute_dtype), optimizer,
                     penalty=penalty, on_nonfinite=on_nonfinite, accumulate_steps=accumulate_steps)
    eval_step = make_eval_step(model, loss_fn if eval_loss_fn is None else eval_loss_fn, compute_dtype)

    def measure(x, y, ts):
        return evaluate(eval_step, ts.params, ts.state, x, y, place.eval_batch_size, place.eval_put)

    def per_epoch(ts):
        splits = [("validation", data.validation), ("test", data.test if test_every_epoch else None)]
        return {f"{name}_{k}": v for name, split in splits if split is not None
                for k, v in measure(*split, ts).items()}

    config, commit = config or {}, runlog.git_commit() if workdir is not None else None
    order = fit_setup.data_order(data, seed)
    saver = Saver(workdir, checkpoint_every, keep, order, config, commit) if checkpoint_every else None
    run = Run(ts, LoopState(0, 0, {}, [], stopping), None)
    if saver is not None:
        run.ts, run.loop, run.best = saver.resume(ts, run.loop)
    out = fit_setup.open_writers(workdir if place.primary else None, run.loop.history, config, commit,
                                 int(run.ts.step), tensorboard)
    total = epochs * order["steps_per_epoch"]
    bar = tqdm(total=total, initial=min(int(run.ts.step), total), disable=not (progress and place.primary),
               unit="step", dynamic_ncols=True)
    guard = nonfinite.Guard(nonfinite.flag_names(ts.params)) if on_nonfinite == "stop" else None
    loop = Loop(step, per_epoch, data.train, data.batch_size, seed, epochs, order["steps_per_epoch"],
                place.put, saver, guard, [*out.writers, writers.progress_writer(bar)], callbacks,
                lambda: bar.update(1))
    try:
        run_epochs(loop, run)
    finally:
        bar.close()
        out.close()
    if run.best is not None:
        run.ts = run.ts._replace(params=run.best[0], state=run.best[1])
    test = measure(*data.test, run.ts) if data.test is not None else None
    if workdir is not None and place.primary:
        history = run.loop.history
        writers.write_summary(os.path.join(workdir, "summary.json"), history,
                              wall_time_s=time.perf_counter() - start_time, steps=int(run.ts.step), config=config,
                              git_commit=commit, checkpoint=saver.last_good if saver else None,
                              best_epoch=run.loop.stopping.best_epoch if run.best is not None else None, test=test)
        if history:
            plot_history(history, os.path.join(workdir, "curves.png"), title=str(config.get("model", "")))
    return FitResult(run.ts, run.loop.history, test)
