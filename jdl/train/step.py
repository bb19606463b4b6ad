"""Step builders: a model, a loss and an optimizer become one jitted, donating training step,
and a jitted evaluation step that handles a padded last batch."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jdl.core import Module
from jdl.metrics import accuracy
from jdl.optim.base import GradientTransformation, apply_updates
from jdl.train import nonfinite
from jdl.train.state import TrainState

LossFn = Callable[..., jax.Array]  # loss(outputs, targets, reduction='mean') -> scalar


def is_classification(outputs: Any, targets: Any) -> bool:
    """True when targets are integer labels for outputs (..., K): accuracy is then reported."""
    return (jnp.issubdtype(targets.dtype, jnp.integer) and outputs.ndim == targets.ndim + 1)


def cast_floating(tree: Any, dtype: Any) -> Any:
    """Every floating-point leaf of ``tree`` cast to ``dtype`` (integers, keys untouched)."""
    return jax.tree.map(
        lambda a: a.astype(dtype) if jnp.issubdtype(jnp.result_type(a), jnp.floating) else a, tree)


def apply_in(model: Module, compute_dtype: Any, params: Any, state: Any, x: Any, **kwargs) -> tuple[Any, Any]:
    """``model.apply`` in mixed precision: out = float32(f(c(θ), c(x))) with c the cast of the
    floating leaves to ``compute_dtype``; the new layer state keeps the old one's dtypes.
    ``compute_dtype=None`` is the plain ``model.apply``."""
    if compute_dtype is None:
        return model.apply(params, state, x, **kwargs)
    out, new_state = model.apply(cast_floating(params, compute_dtype), state,
                                 cast_floating(x, compute_dtype), **kwargs)
    return cast_floating(out, jnp.float32), jax.tree.map(lambda n, o: n.astype(o.dtype), new_state, state)


def make_step(model: Module, loss_fn: LossFn, optimizer: GradientTransformation,
              penalty: Callable[[Any], jax.Array] | None = None,
              augment: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
              donate: bool = True, jit: bool = True,
              on_nonfinite: str | None = None,
              compute_dtype: Any = None) -> Callable[[TrainState, Any], tuple[TrainState, dict]]:
    """Build ``step(train_state, (x, y)) -> (train_state, metrics)``:

        k_aug, k_model = split(fold_in(key, t));  x' = augment(k_aug, x)  (if given)
        out, state' = model.apply(θ, state, x', key=k_model, train=True)
        J(θ) = loss(out, y) + penalty(θ)  (if given, e.g. an L2 term λ/2·‖w‖²)
        g = ∇_θ J;  u, opt_state' = optimizer.update(g, opt_state, θ);  θ' = θ + u

    Mixed precision (``compute_dtype``, e.g. ``jnp.bfloat16``): the forward and backward passes
    run on c(θ) and c(x'), the floating leaves cast to ``compute_dtype``; the outputs are cast
    back to float32 before the loss, and since the cast is differentiated, g = ∇_θ J arrives in
    θ's dtype. Params, optimizer state and the update stay float32 ("master weights"):

        out = f(c(θ), c(x'));  J = loss(float32(out), y);  g = ∇_θ J  (float32)

    bfloat16 has float32's exponent range, so its gradients need no loss scaling; float16 would
    (small gradients underflow), and jdl does not scale losses.

    ``metrics`` holds the batch ``loss`` (the data term, and ``penalty`` when there is one, and
    ``accuracy`` for integer class labels). The step is jitted once with the train state
    donated, so params and optimizer state are updated in place; nothing in it assumes one
    device.

    ``on_nonfinite='stop'`` adds ``metrics['ok']``, the (1 + L,) flags of
    ``jdl.train.nonfinite.finite_flags`` (the loss, each new param leaf) for the loop to check;
    ``'skip'`` also keeps θ, state and opt_state unchanged on a step whose flags
    are not all set (t still advances), zeroes its metrics and reports ``metrics['skipped']``.
    """
    nonfinite.check_mode(on_nonfinite)

    def step(ts: TrainState, batch: Any) -> tuple[TrainState, dict]:
        x, y = batch
        aug_key, key = jax.random.split(jax.random.fold_in(ts.key, ts.step))
        if augment is not None:
            x = augment(aug_key, x)

        def objective(params):
            out, state = apply_in(model, compute_dtype, params, ts.state, x, key=key, train=True)
            data_loss = loss_fn(out, y)
            reg = penalty(params) if penalty is not None else jnp.zeros((), data_loss.dtype)
            return data_loss + reg, (out, state, data_loss, reg)

        (_, (out, state, loss, reg)), grads = jax.value_and_grad(objective, has_aux=True)(ts.params)
        updates, opt_state = optimizer.update(grads, ts.opt_state, ts.params)
        params = apply_updates(ts.params, updates)
        metrics = {"loss": loss}
        if penalty is not None:
            metrics["penalty"] = reg
        if is_classification(out, y):
            metrics["accuracy"] = accuracy(out, y)
        if on_nonfinite is not None:
            ok = nonfinite.finite_flags(loss, params)
            if on_nonfinite == "skip":
                good = jnp.all(ok)
                params, state, opt_state = nonfinite.select(
                    good, (params, state, opt_state), (ts.params, ts.state, ts.opt_state))
                metrics = {k: jnp.where(good, v, jnp.zeros_like(v)) for k, v in metrics.items()}
                metrics["skipped"] = 1 - good.astype(jnp.int32)
            metrics["ok"] = ok
        return TrainState(params, state, opt_state, ts.step + 1, ts.key), metrics

    if not jit:
        return step
    return jax.jit(step, donate_argnums=(0,) if donate else ())


def make_eval_step(model: Module, loss_fn: LossFn, compute_dtype: Any = None) -> Callable[..., dict]:
    """Build a jitted ``eval_step(params, state, x, y, mask) -> sums`` in evaluation mode
    (``train=False``), with params and x cast to ``compute_dtype`` as in ``make_step``.
    ``mask`` (B,) marks real examples (1) and padding (0); it returns the masked sums of the
    per-example loss (and correct predictions) and the count, so batches add up exactly to a
    mean over the data set."""

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
             y: np.ndarray, batch_size: int = 256) -> dict[str, float]:
    """Mean loss (and accuracy) of a model over a whole data set, in fixed-size batches: the
    last batch is padded to ``batch_size`` and masked, so the step never recompiles.

    Shapes: x (N, ...), y (N, ...) → {'loss': float, 'accuracy': float}.
    """
    n = len(x)
    if n == 0:
        raise ValueError("evaluate: the data set is empty")
    batch_size = min(batch_size, n)
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
        sums = eval_step(params, state, xb, yb, mask)
        totals = sums if not totals else jax.tree.map(jnp.add, totals, sums)
    totals = jax.device_get(totals)
    count = float(totals.pop("count"))
    return {k: float(v) / count for k, v in totals.items()}
