"""The pieces of the training loop that are plain values and functions: where the loop stands
(``LoopState``), the batches from that position on, and an epoch's training record."""

from __future__ import annotations

from typing import Any, Callable, Iterator, NamedTuple

import jax
import numpy as np

from jdl.data.batching import batches
from jdl.train import stopping as es_lib


class LoopState(NamedTuple):
    """Everything the loop knows besides the ``TrainState``: ``batch`` batches of ``epoch``
    are done (``batch == steps_per_epoch``: the epoch's steps are done, its record is not),
    ``sums`` of the metrics over the epoch's steps so far (device scalars), the ``history``
    of per-epoch records, and the early-stopping state. Saved with every checkpoint, so that a
    resumed run continues bit for bit."""

    epoch: int
    batch: int
    sums: dict
    history: list
    stopping: es_lib.EarlyStopping


def replay(stopping: es_lib.EarlyStopping, history: list[dict]) -> es_lib.EarlyStopping:
    """The early-stopping state after the records of ``history`` (a resumed run rebuilds it
    from the saved history rather than trusting a second copy); records without the metric
    are passed over."""
    for record in history:
        if stopping.metric in record:
            stopping, _ = es_lib.update(stopping, record["epoch"], record)
    return stopping


def epoch_batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, epoch: int, start: int,
                  put: Callable[[tuple], Any] | None = None) -> Iterator[Any]:
    """The batches of ``epoch`` from batch ``start`` on, in the seeded order of
    ``jdl.data.epoch_order`` (a pure function of (seed, epoch), so a resume sees the same
    batches), each passed through ``put`` (placing it on devices, e.g. sharded over a mesh)."""
    for batch in batches(x, y, batch_size, seed=seed, epoch=epoch, start=start):
        yield batch if put is None else put(batch)


def add_metrics(sums: dict, metrics: dict) -> dict:
    """Running sums of a step's metrics, on the device (no transfer per step)."""
    return metrics if not sums else jax.tree.map(lambda a, c: a + c, sums, metrics)


def train_record(epoch: int, t: int, sums: dict, steps_per_epoch: int) -> dict:
    """The epoch's record {epoch, step, train_<metric>}: means over its steps (over the steps
    not skipped, with ``train_skipped_steps``, when a non-finite guard skipped some)."""
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
