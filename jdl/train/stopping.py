"""Early stopping as a value: a NamedTuple state and a pure ``update`` (the course's "stop when
the validation error has not improved for P epochs, keep the best weights")."""

from __future__ import annotations

import math
from typing import NamedTuple


class EarlyStopping(NamedTuple):
    """Early-stopping state: the ``metric`` watched (lower is better when ``mode='min'``),
    ``patience`` P (``None``: never stop, only track the best), the best value and its epoch
    so far, and ``stop``, set once P epochs have passed without improvement."""

    metric: str
    mode: str = "min"
    patience: int | None = None
    best_value: float | None = None
    best_epoch: int | None = None
    stop: bool = False


def early_stopping(metric: str = "validation_loss", patience: int | None = None,
                   mode: str | None = None) -> EarlyStopping:
    """A fresh ``EarlyStopping``; ``mode`` defaults to 'min' for names ending in 'loss', else 'max'.

    >>> es = early_stopping("validation_loss", patience=2)
    >>> for epoch, loss in enumerate([0.9, 0.7, 0.8, 0.75], start=1):
    ...     es, improved = update(es, epoch, {"validation_loss": loss})
    >>> es.best_epoch, es.best_value, es.stop
    (2, 0.7, True)
    """
    mode = mode or ("min" if metric.endswith("loss") else "max")
    if mode not in ("min", "max"):
        raise ValueError(f"early_stopping: mode must be 'min' or 'max', got {mode!r}")
    if patience is not None and patience < 1:
        raise ValueError(f"early_stopping: patience must be >= 1 or None, got {patience}")
    return EarlyStopping(metric, mode, patience)


def update(es: EarlyStopping, epoch: int, record: dict) -> tuple[EarlyStopping, bool]:
    """Fold one epoch's ``record`` into the state:

        improved = value < best (mode 'min') or value > best ('max'); the first finite value improves
        stop = patience is not None and epoch − best_epoch ≥ patience

    Returns ``(new_state, improved)``. A record without the metric is an error that lists the
    metrics it has; a NaN never improves.
    """
    if es.metric not in record:
        raise ValueError(f"early stopping: metric {es.metric!r} is not among the epoch's metrics "
                         f"{sorted(record)}")
    value = float(record[es.metric])
    sign = 1.0 if es.mode == "min" else -1.0
    improved = math.isfinite(value) and (es.best_value is None or sign * value < sign * es.best_value)
    if improved:
        es = es._replace(best_value=value, best_epoch=epoch)
    ref = es.best_epoch if es.best_epoch is not None else 0
    stop = es.patience is not None and epoch - ref >= es.patience
    return es._replace(stop=stop), improved
