"""The checkpoint policy of a ``fit`` run: when to write (every N steps, at an epoch whose
validation metric is the best so far, at the end, on a signal or an error), what goes with the
``TrainState`` (the loop's position, running sums and history), and resuming from the newest
readable checkpoint. Storage itself is ``jdl.train.checkpoint`` (orbax)."""

from __future__ import annotations

import os
from typing import Any

from jdl.train import checkpoint as ckpt
from jdl.train import resume
from jdl.train.loop import LoopState, replay
from jdl.train.state import TrainState


class Saver:
    """Checkpoints of one run under ``<workdir>/checkpoints``: ``every`` steps, ``keep`` the last
    K plus the best by the early-stopping metric. Holds the two facts the loop needs between
    saves: the newest complete checkpoint (``last_good``) and the step it is of."""

    def __init__(self, workdir: str | os.PathLike, every: int, keep: int, order: dict, config: dict,
                 commit: str | None):
        self.directory = os.path.join(workdir, ckpt.CHECKPOINTS)
        self.every, self.keep, self.order = every, keep, order  # order: what fixes the data order
        self.config, self.commit = config, commit
        self.last_good: str | None = None
        self.saved_step: int | None = None

    def resume(self, ts: TrainState, loop: LoopState) -> tuple[TrainState, LoopState, Any]:
        """Continue from the newest complete checkpoint, if any: the train state, the loop's
        position, sums and history, and (with a patience) the params and state of the best
        epoch, read back from its checkpoint. Refuses when the data order would differ."""
        if not ckpt.steps(self.directory):
            return ts, loop, None
        found = ckpt.restore(self.directory, ts)
        meta = found.meta
        resume.check_compatible(meta["position"], self.order, found.path)
        self.last_good, self.saved_step = found.path, int(found.train_state.step)
        stopping = replay(loop.stopping, meta["history"])
        loop = LoopState(meta["position"]["epoch"], meta["position"]["batch"],
                         resume.sums_from_json(meta["sums"]), meta["history"], stopping)
        best = None
        if stopping.patience is not None and stopping.best_epoch is not None:
            step = stopping.best_epoch * self.order["steps_per_epoch"]
            at_best = ckpt.restore(self.directory, ts, step=step).train_state
            best = (at_best.params, at_best.state)
        return found.train_state, loop, best

    def save(self, ts: TrainState, loop: LoopState, metric: dict | None = None) -> None:
        """Write ``ts`` with the loop's state (replacing a checkpoint of the same step)."""
        meta = {"config": self.config, "git_commit": self.commit, "metric": metric,
                "position": {**self.order, "epoch": loop.epoch, "batch": loop.batch},
                "sums": resume.sums_to_json(loop.sums), "history": loop.history}
        t = int(ts.step)
        self.last_good = ckpt.save(self.directory, ts, meta, keep=self.keep, replace=self.saved_step == t)
        self.saved_step = t

    def due_in_epoch(self, t: int, batch: int) -> bool:
        """A mid-epoch save: every ``every`` steps, except at the epoch's last batch (the
        epoch's end saves then, with its record)."""
        return t % self.every == 0 and batch < self.order["steps_per_epoch"]

    def due_at_epoch_end(self, t: int, improved: bool, last: bool) -> bool:
        """At an epoch's end: every ``every`` steps, when the metric improved, at the last epoch."""
        return t % self.every == 0 or improved or last
