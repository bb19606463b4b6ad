"""The training step: a loss function and an optimizer become one pure, jitted, donating
``step(train_state, batch) -> (train_state, metrics)``; ``supervised`` builds the loss function
of the usual (model, loss) case, and a GAN or a VAE writes its own."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from jdl.optim.base import GradientTransformation, apply_updates
from jdl.optim.fused import FusedTransformation
from jdl.train import nonfinite
from jdl.train.state import TrainState

# loss_fn(params, state, batch, key) -> (loss, (new_state, metrics)): loss a scalar, metrics a
# dict of scalars; batch any pytree whose leaves share a leading batch axis.
LossFn = Callable[[Any, Any, Any, jax.Array], tuple[jax.Array, tuple[Any, dict]]]


def make_step(loss_fn: LossFn, optimizer: GradientTransformation, *,
              penalty: Callable[[Any], jax.Array] | None = None, on_nonfinite: str | None = None,
              accumulate_steps: int = 1, donate: bool = True,
              jit: bool = True) -> Callable[[TrainState, Any], tuple[TrainState, dict]]:
    """Build ``step(train_state, batch) -> (train_state, metrics)``:

        k = fold_in(key, t)
        ℓ, (state', m) = loss_fn(θ, state, batch, k)
        J(θ) = ℓ + penalty(θ)  (if given, e.g. an L2 term λ/2·‖w‖², ``jdl.regularizers``)
        g = ∇_θ J;  u, opt_state' = optimizer.update(g, opt_state, θ);  θ' = θ + u

    (a ``jdl.optim.FusedTransformation`` — ``fused_adam``, ``fused_sgd`` — gives θ', opt_state'
    from its ``step(g, opt_state, θ)``, the update and θ + u in one native pass).

    ``metrics`` holds ``loss`` (ℓ, the data term), ``penalty`` when there is one, and the
    loss function's own metrics ``m``. The step is jitted once with the train state donated,
    so params and optimizer state are updated in place; nothing in it assumes one device (a
    batch sharded over a mesh runs it data-parallel, see ``jdl.distributed``).

    Gradient accumulation (``accumulate_steps=K``): the batch of K·b examples is cut into K
    microbatches (microbatch i holds rows i, i+K, i+2K, …, so that each device's share of a
    sharded batch holds rows of every microbatch) and

        g = (1/K) Σ_i ∇_θ J_i(θ),  ℓ and m averaged the same way,

    which is one step on the whole batch when ℓ is a mean over examples (the layer state is
    threaded through the microbatches in turn, so BatchNorm's running statistics are updated
    K times; microbatch i draws its randomness from fold_in(k, i)). Peak memory is that of a
    b-example step.

    ``on_nonfinite='stop'`` adds ``metrics['ok']``, the (1 + L,) flags of
    ``jdl.train.nonfinite.finite_flags`` (the loss, each new param leaf) for the loop to check;
    ``'skip'`` also keeps θ, state and opt_state unchanged on a step whose flags are not all
    set (t still advances), zeroes its metrics and reports ``metrics['skipped']``.
    """
    nonfinite.check_mode(on_nonfinite)
    if not isinstance(accumulate_steps, int) or accumulate_steps < 1:
        raise ValueError(f"make_step: accumulate_steps must be an int >= 1, got {accumulate_steps!r}")

    def objective(params, state, batch, key):
        loss, (new_state, metrics) = loss_fn(params, state, batch, key)
        reg = penalty(params) if penalty is not None else jnp.zeros((), loss.dtype)
        return loss + reg, (new_state, {"loss": loss, **({"penalty": reg} if penalty is not None else {}), **metrics})

    def gradients(params, state, batch, key):
        if accumulate_steps == 1:
            (_, (state, metrics)), grads = jax.value_and_grad(objective, has_aux=True)(params, state, batch, key)
            return grads, state, metrics
        return _accumulated(objective, accumulate_steps, params, state, batch, key)

    def step(ts: TrainState, batch: Any) -> tuple[TrainState, dict]:
        key = jax.random.fold_in(ts.key, ts.step)
        grads, state, metrics = gradients(ts.params, ts.state, batch, key)
        if isinstance(optimizer, FusedTransformation):  # the update applied in one native pass
            params, opt_state = optimizer.step(grads, ts.opt_state, ts.params)
        else:
            updates, opt_state = optimizer.update(grads, ts.opt_state, ts.params)
            params = apply_updates(ts.params, updates)
        if on_nonfinite is not None:
            ok = nonfinite.finite_flags(metrics["loss"], params)
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


def _accumulated(objective: Callable, k: int, params: Any, state: Any, batch: Any, key: jax.Array):
    """(1/K) Σ_i ∇J_i over K strided microbatches under ``lax.scan``; metrics averaged."""
    n = {leaf.shape[0] if leaf.ndim else None for leaf in jax.tree.leaves(batch)}
    if len(n) != 1 or None in n or next(iter(n)) % k:
        raise ValueError(f"make_step: accumulate_steps={k} needs every batch leaf to have a leading axis "
                         f"divisible by {k}; got leading sizes {sorted(map(str, n))}")
    # (K·b, ...) -> (b, K, ...) -> (K, b, ...): microbatch i holds rows i, i+K, ...
    micro = jax.tree.map(lambda a: jnp.swapaxes(a.reshape(a.shape[0] // k, k, *a.shape[1:]), 0, 1), batch)
    grad_fn = jax.value_and_grad(objective, has_aux=True)

    def body(carry, inputs):
        grads_sum, state = carry
        i, batch_i = inputs
        (_, (state, metrics)), grads = grad_fn(params, state, batch_i, jax.random.fold_in(key, i))
        return (jax.tree.map(jnp.add, grads_sum, grads), state), metrics

    zeros = jax.tree.map(jnp.zeros_like, params)
    (grads, state), metrics = jax.lax.scan(body, (zeros, state), (jnp.arange(k), micro))
    return (jax.tree.map(lambda g: g / k, grads), state, jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics))
