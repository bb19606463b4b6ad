"""What ``fit`` adds to a checkpoint so a run continues exactly: the data position (checked
against the run's on resume) and the running sums of the epoch in progress, bit for bit; the
history goes as it is, and early stopping's state is replayed from it (``loop.replay``).

The data order is a pure function of (seed, epoch) (``jdl.data.epoch_order``) and the dropout
key of step t is ``fold_in(key, t)``, so the position (epoch e, batch b) and the saved
``TrainState`` are all the state there is: after restoring, step t + 1 sees the same batch,
the same key and the same optimizer state as in a run never interrupted.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np


def sums_to_json(sums: dict[str, Any]) -> dict[str, list]:
    """{name: [value, dtype]}; a float32 goes through a Python float unchanged."""
    return {k: [np.asarray(v).item(), str(np.asarray(v).dtype)] for k, v in jax.device_get(sums).items()}


def sums_from_json(saved: dict[str, list]) -> dict[str, jax.Array]:
    """Inverse of :func:`sums_to_json`: device scalars with the saved dtypes and bits."""
    return {k: jax.numpy.asarray(np.asarray(v, dtype=dtype)) for k, (v, dtype) in saved.items()}


def check_compatible(saved: dict, now: dict, path: str) -> None:
    """Refuse to resume when the data order would differ (batch size, data set size, seed)."""
    keys = ("batch_size", "n_train", "seed", "steps_per_epoch")
    differ = [f"{k}: checkpoint {saved.get(k)}, now {now[k]}" for k in keys if saved.get(k) != now[k]]
    if differ:
        raise ValueError(f"fit: cannot resume exactly from {path}: " + "; ".join(differ)
                         + ". Use the same settings, or another workdir to start afresh.")
