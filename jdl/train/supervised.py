"""The supervised case of the training step: a model and a loss on (x, y) batches become the
general ``loss_fn(params, state, batch, key) -> (loss, (state, metrics))`` that ``make_step``
takes; mixed precision (``apply_in``) lives here because it is about running the model."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from jdl.core import Module
from jdl.metrics import accuracy

Loss = Callable[..., jax.Array]  # loss(outputs, targets, reduction='mean') -> scalar


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
    ``compute_dtype=None`` is the plain ``model.apply``.

    Since the cast is differentiated, ∇_θ of a loss on ``out`` arrives in θ's dtype (float32
    "master weights"). bfloat16 has float32's exponent range, so its gradients need no loss
    scaling; float16 would (small gradients underflow), and jdl does not scale losses.
    """
    if compute_dtype is None:
        return model.apply(params, state, x, **kwargs)
    out, new_state = model.apply(cast_floating(params, compute_dtype), state,
                                 cast_floating(x, compute_dtype), **kwargs)
    return cast_floating(out, jnp.float32), jax.tree.map(lambda n, o: n.astype(o.dtype), new_state, state)


def supervised(model: Module, loss: Loss, *, augment: Callable[[jax.Array, Any], Any] | None = None,
               compute_dtype: Any = None) -> Callable[..., tuple[jax.Array, tuple[Any, dict]]]:
    """The supervised objective as a ``make_step`` loss function, for batches ``(x, y)``:

        k_aug, k_model = split(key);  x' = augment(k_aug, x)  (if given)
        out, state' = model.apply(θ, state, x', key=k_model, train=True)
        ℓ(θ) = loss(out, y)

    returning ``(ℓ, (state', metrics))`` with ``metrics['accuracy']`` when ``y`` holds integer
    class labels for ``out`` (B, ..., K), or for ``out[0]`` when the model returns a plain tuple
    (main, *auxiliary outputs), as ``jdl.nn.with_auxiliary_heads`` does in training.
    ``compute_dtype`` runs the model in mixed precision (see ``apply_in``).

    Shapes: x (B, ...) as the model takes; y (B, ...) as ``loss`` takes with ``out``.

    >>> import jax, jdl
    >>> loss_fn = supervised(jdl.models.mlp([3]), jdl.losses.softmax_cross_entropy)
    >>> step = jdl.train.make_step(loss_fn, jdl.optim.sgd(0.1))
    """

    def loss_fn(params: Any, state: Any, batch: Any, key: jax.Array) -> tuple[jax.Array, tuple[Any, dict]]:
        x, y = batch
        aug_key, model_key = jax.random.split(key)
        if augment is not None:
            x = augment(aug_key, x)
        out, new_state = apply_in(model, compute_dtype, params, state, x, key=model_key, train=True)
        main = out[0] if type(out) is tuple else out  # (main, *auxiliary) in training (with_auxiliary_heads)
        metrics = {"accuracy": accuracy(main, y)} if is_classification(main, y) else {}
        return loss(out, y), (new_state, metrics)

    return loss_fn
