"""The training state: everything a run needs to continue, as one pytree."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jdl.core import Module
from jdl.optim.base import GradientTransformation


class TrainState(NamedTuple):
    """params (trained), state (layer state: BatchNorm statistics), opt_state (the optimizer's),
    step (updates made so far, int32 scalar) and key (the run's root key; step t uses
    ``fold_in(key, t)``, so the randomness of a step depends on nothing but the step)."""

    params: Any
    state: Any
    opt_state: Any
    step: jax.Array
    key: jax.Array


def init_train_state(model: Module, optimizer: GradientTransformation, x: Any,
                     seed: int | jax.Array = 0) -> TrainState:
    """Initialize params and layer state from an example input ``x`` (array or
    ``ShapeDtypeStruct``, batch first), and the optimizer's state from the params.

    The seed's key is split in two: one for ``model.init``, one kept as the run's key for
    dropout and other per-step randomness.
    """
    key = jax.random.key(seed) if isinstance(seed, int) else seed
    init_key, run_key = jax.random.split(key)
    params, state = model.init(init_key, x)
    return TrainState(params, state, optimizer.init(params), jnp.zeros([], jnp.int32), run_key)
