"""Evaluation: a jitted step that sums a model's loss (and correct predictions) over a padded,
masked batch, and ``evaluate``, the mean over a whole data set in fixed-size batches."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jdl.core import Module
from jdl.train.supervised import Loss, apply_in, is_classification


def make_eval_step(model: Module, loss_fn: Loss, compute_dtype: Any = None) -> Callable[..., dict]:
    """Build a jitted ``eval_step(params, state, x, y, mask) -> sums`` in evaluation mode
    (``train=False``), with params and x cast to ``compute_dtype`` as in ``supervised``:

        sums = {loss: Σ_i mask_i·ℓ_i, accuracy: Σ_i mask_i·[argmax out_i = y_i], count: Σ_i mask_i}

    ``mask`` (B,) marks real examples (1) and padding (0), so batches add up exactly to a mean
    over the data set."""

    def eval_step(params, state, x, y, mask):
        out, _ = apply_in(model, compute_dtype, params, state, x, train=False)
        per_example = loss_fn(out, y, reduction="none")
        per_example = per_example.reshape(per_example.shape[0], -1).mean(axis=1)  # (B,)
        sums = {"loss": jnp.sum(per_example * mask), "count": jnp.sum(mask)}
        if is_classification(out, y):
            correct = (jnp.argmax(out, axis=-1) == y).reshape(y.shape[0], -1).mean(axis=1)
            sums["accuracy"] = jnp.sum(correct * mask)
        return sums

    return jax.jit(eval_step)


def evaluate(eval_step: Callable[..., dict], params: Any, state: Any, x: np.ndarray,
             y: np.ndarray, batch_size: int = 256,
             put: Callable[[tuple], tuple] | None = None) -> dict[str, float]:
    """Mean loss (and accuracy) of a model over a whole data set, in fixed-size batches: the
    last batch is padded to ``batch_size`` and masked, so the step never recompiles.
    ``put(batch)`` places each host batch ``(x, y, mask)`` (e.g. sharded over a mesh,
    ``jdl.distributed.shard_batch``); by default JAX puts it on the default device.

    Shapes: x (N, ...), y (N, ...) → {'loss': float, 'accuracy': float}.
    """
    n = len(x)
    if n == 0:
        raise ValueError("evaluate: the data set is empty")
    batch_size = min(batch_size, n) if put is None else batch_size
    totals: dict[str, Any] = {}
    for start in range(0, n, batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        real = len(xb)
        mask = np.zeros(batch_size, np.float32)
        mask[:real] = 1
        if real < batch_size:
            pad = batch_size - real
            xb = np.concatenate([xb, np.repeat(xb[:1], pad, 0)])
            yb = np.concatenate([yb, np.repeat(yb[:1], pad, 0)])
        batch = (xb, yb, mask) if put is None else put((xb, yb, mask))
        sums = eval_step(params, state, *batch)
        totals = sums if not totals else jax.tree.map(jnp.add, totals, sums)
    totals = jax.device_get(totals)
    count = float(totals.pop("count"))
    return {k: float(v) / count for k, v in totals.items()}
