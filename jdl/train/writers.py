"""What a run writes as it goes, as plain functions called with ``(epoch, record, train_state)``
at each epoch's end (like ``fit``'s callbacks): metrics.jsonl, TensorBoard scalars, the progress
bar's summary; and at the end summary.json and the curves."""

from __future__ import annotations

import json
import os
from typing import Any, Callable

from jdl.train import runlog

Writer = Callable[[int, dict, Any], None]


def jsonl_writer(path: str | os.PathLike, history: list[dict]) -> Writer:
    """Write ``history`` (the records of a resumed run, or none) to ``path``, one JSON line a
    record, and return a writer that appends each new record."""
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in history)

    def write(epoch: int, record: dict, ts: Any) -> None:
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")

    return write


def tensorboard_writer(logdir: str | os.PathLike, config: dict, commit: str | None,
                       step: int) -> tuple[Writer, Callable[[], None]] | None:
    """TensorBoard events under ``logdir``: the config and git commit as text now, each
    record's numbers as scalars at its step; ``(writer, close)``, or ``None`` without
    tensorboard installed."""
    board = runlog.TensorBoard.open(logdir)
    if board is None:
        return None
    board.text("config", config, step)
    board.text("git_commit", str(commit), step)
    return (lambda epoch, record, ts: board.scalars(record["step"], record)), board.close


def progress_writer(bar: Any) -> Writer:
    """Show the record's train/validation/test numbers beside a tqdm progress bar."""
    def write(epoch: int, record: dict, ts: Any) -> None:
        bar.set_postfix({k: f"{v:.4f}" for k, v in record.items()
                         if k.startswith(("train_", "validation_", "test_"))})

    return write


def write_summary(path: str | os.PathLike, history: list[dict], *, wall_time_s: float, steps: int,
                  config: dict, git_commit: str | None, checkpoint: str | None,
                  best_epoch: int | None = None, test: dict | None = None) -> dict:
    """summary.json: the final record, the best epoch's (when early stopping chose one), the
    test metrics measured once at the end, wall time, config, commit, last checkpoint."""
    summary: dict[str, Any] = {"final": history[-1] if history else {}, "wall_time_s": wall_time_s,
                               "epochs": len(history), "steps": steps, "config": config,
                               "git_commit": git_commit, "checkpoint": checkpoint}
    if best_epoch is not None:
        summary["best_epoch"] = best_epoch
        summary["best"] = history[best_epoch - 1]
    if test is not None:
        summary["test"] = test
    with open(path, "w") as f:
        json.dump(summary, f, indent=2)
    return summary
