"""The loop itself: epochs of jitted steps from the ``LoopState``'s position, the epoch's end
(record, validation, early stopping, writers, checkpoint), and the guards around them (non-finite
checks, SIGINT/SIGTERM, a checkpoint on an error)."""

from __future__ import annotations

import contextlib
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
from absl import logging

from jdl.train import stopping as es_lib
from jdl.train import nonfinite
from jdl.train.loop import LoopState, add_metrics, epoch_batches, train_record
from jdl.train.saver import Saver
from jdl.train.signals import GracefulStop

NONFINITE_CHECK_EVERY = 100  # steps between checks of the non-finite flags (one device sync each)


class Loop(NamedTuple):
    """What stays fixed through a run: the step, the per-epoch evaluation
    (``evaluate(ts) -> record entries``), the data, and where results go."""

    step: Callable
    evaluate: Callable[[Any], dict]
    data: tuple
    batch_size: int
    seed: int
    epochs: int
    steps_per_epoch: int
    put: Callable | None
    saver: Saver | None
    guard: nonfinite.Guard | None
    writers: Sequence[Callable[[int, dict, Any], None]]
    callbacks: Sequence[Callable[[int, dict, Any], None]]
    on_step: Callable[[], None]


class Run:
    """The loop's changing values in one visible place: the train state, its step count ``t``
    as a Python int (reading ``ts.step`` would wait for the device after every step), the
    ``LoopState``, the best epoch's (params, state) kept in memory, and whether a step is under
    way (a step interrupted midway leaves its donated buffers unusable: nothing is saved then)."""

    def __init__(self, ts: Any, loop: LoopState, best: Any):
        self.ts, self.loop, self.best, self.in_step = ts, loop, best, False
        self.t = int(ts.step)


def run_epochs(loop: Loop, run: Run) -> None:
    """Train until ``loop.epochs`` or early stopping; checkpoint on SIGINT/SIGTERM (then the
    signal goes on) and on an error raised outside a step (then the error goes on)."""
    with GracefulStop() if loop.saver is not None else contextlib.nullcontext() as stop:
        try:
            while run.loop.epoch < loop.epochs and not run.loop.stopping.stop:
                _steps(loop, run, stop)
                _end_epoch(loop, run)
            if loop.saver is not None and loop.saver.saved_step != run.t:
                _save(loop, run)
            if stop is not None and stop.requested:  # arrived after the last step
                stop.deliver()
        except BaseException as e:
            saver = loop.saver
            if (saver is not None and not run.in_step and not isinstance(e, nonfinite.NonFiniteError)
                    and saver.saved_step != run.t):
                try:
                    _save(loop, run)  # a failing callback or evaluation, or an interrupt: keep the progress
                except Exception as inner:  # noqa: BLE001 - report the original error, not this one
                    logging.warning("fit: could not save a checkpoint after %r: %r", e, inner)
            raise


def _save(loop: Loop, run: Run, metric: dict | None = None) -> None:
    if loop.guard is not None:
        loop.guard.check(loop.saver.last_good)  # never write a non-finite state
    loop.saver.save(run.ts, run.loop, metric)


def _steps(loop: Loop, run: Run, stop: GracefulStop | None) -> None:
    """The remaining steps of the current epoch."""
    x, y = loop.data
    epoch, b = run.loop.epoch, run.loop.batch
    for batch in epoch_batches(x, y, loop.batch_size, loop.seed, epoch, b, loop.put):
        run.in_step = True
        run.ts, metrics = loop.step(run.ts, batch)
        ok = metrics.pop("ok", None)
        b += 1
        run.loop = run.loop._replace(batch=b, sums=add_metrics(run.loop.sums, metrics))
        run.t, run.in_step = run.t + 1, False
        t = run.t
        if loop.guard is not None:
            loop.guard.add(t, ok, NONFINITE_CHECK_EVERY, loop.saver.last_good if loop.saver else None)
        loop.on_step()
        if loop.saver is not None and loop.saver.due_in_epoch(t, b):
            _save(loop, run)
        if stop is not None and stop.requested:
            _save(loop, run)
            stop.deliver()


def _end_epoch(loop: Loop, run: Run) -> None:
    """Record the epoch, evaluate, update early stopping, write, checkpoint, call back."""
    if loop.guard is not None:
        loop.guard.check(loop.saver.last_good if loop.saver else None)
    t, epoch = run.t, run.loop.epoch
    record = train_record(epoch, t, run.loop.sums, loop.steps_per_epoch)
    record.update(loop.evaluate(run.ts))
    stopping, improved = run.loop.stopping, False
    if stopping.metric in record:
        stopping, improved = es_lib.update(stopping, epoch + 1, record)
        if improved and stopping.patience is not None:
            run.best = jax.tree.map(jnp.copy, (run.ts.params, run.ts.state))
    elif stopping.patience is not None:
        es_lib.update(stopping, epoch + 1, record)  # raises, naming the metrics there are
    run.loop = LoopState(epoch + 1, 0, {}, [*run.loop.history, record], stopping)
    for write in loop.writers:
        write(epoch + 1, record, run.ts)
    saver = loop.saver
    if saver is not None and saver.due_at_epoch_end(t, improved, epoch + 1 == loop.epochs or stopping.stop):
        _save(loop, run, _metric(record, stopping))
    for callback in loop.callbacks:
        callback(epoch + 1, record, run.ts)


def _metric(record: dict, stopping: es_lib.EarlyStopping) -> dict | None:
    """The checkpoint's metric {'name', 'value', 'mode'} for keeping the best, if recorded."""
    if stopping.metric not in record:
        return None
    return {"name": stopping.metric, "value": record[stopping.metric], "mode": stopping.mode}
