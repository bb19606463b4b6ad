"""Hyperparameters as optimizer state: change or log the learning rate (or β, ε, λ) while training.

``inject_hyperparams(adam)(learning_rate=1e-3)`` builds the same optimizer as ``adam(1e-3)`` but
keeps its numeric arguments in the state, ``InjectHyperparamsState(count, hyperparams,
inner_state)``. Each update rebuilds the inner optimizer from ``state.hyperparams`` — under jit
the values are traced arrays, so one compiled step serves every value — and a schedule given as
an argument is evaluated at t, the updates made so far:

    h_t = s(t) for a schedule argument s,  h_t = state.hyperparams[h] for a number;
    u_t, inner_{t+1} = factory(h_t…).update(g_t, inner_t, θ_t)

so ``state.hyperparams["learning_rate"]`` is the η used by the last update (log it), and
``set_hyperparams(state, learning_rate=η')`` changes it for the next ones. optax's function of
the same name does this for optax's optimizers and is the reference in the tests.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Iterable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jdl.optim.base import GradientTransformation, with_extra_args_support


class InjectHyperparamsState(NamedTuple):
    """count: t, the updates made so far; hyperparams: name → scalar array, the values the last
    update used (the initial ones before any); inner_state: the wrapped optimizer's state."""

    count: jax.Array
    hyperparams: dict[str, jax.Array]
    inner_state: Any


def _float_dtype(params: Any) -> Any:
    """The widest real floating dtype among the params' leaves (complex64 → float32), else float32."""
    dtypes = [jnp.real(jnp.zeros((), x.dtype)).dtype for x in jax.tree.leaves(params)
              if jnp.issubdtype(x.dtype, jnp.inexact)]
    return functools.reduce(jnp.promote_types, dtypes) if dtypes else jnp.dtype(jnp.float32)


def _as_array(value: Any, dtype: Any) -> jax.Array:
    """A float (Python, NumPy or weakly typed) in ``dtype``; any other number as it is."""
    weak_or_python = not isinstance(value, jax.Array) or getattr(value, "weak_type", False)
    if weak_or_python and jnp.issubdtype(jnp.result_type(value), jnp.floating):
        return jnp.asarray(value, dtype)
    return jnp.asarray(value)


def _split(arguments: dict[str, Any], static: set[str]) -> tuple[dict, dict, dict]:
    """(schedules, numbers, static) by optax's rule: bools, None, types and names in ``static``
    are static; other callables are schedules t ↦ h_t; ints, floats and arrays are numbers."""
    schedules, numbers, other = {}, {}, {}
    for name, value in arguments.items():
        if name in static or isinstance(value, (bool, type)) or value is None:
            other[name] = value
        elif callable(value):
            schedules[name] = value
        elif isinstance(value, (int, float, np.ndarray, np.generic, jax.Array)):
            numbers[name] = value
        else:
            other[name] = value
    return schedules, numbers, other


def inject_hyperparams(factory: Callable[..., GradientTransformation], static_args: str | Iterable[str] = (),
                       hyperparam_dtype: Any = None) -> Callable[..., GradientTransformation]:
    """Wrap an optimizer factory so its numeric hyperparameters live in the state (module docstring).

    Shapes: every hyperparameter is a scalar array; the inner state is the factory's.
    Args:
      factory: any function returning a ``GradientTransformation`` (``jdl.optim.adam``, ``sgd``…).
      static_args: names of arguments to keep out of the state (a callable that is not a
        schedule, e.g. ``mask=weights_only``, must be named here, as in optax).
      hyperparam_dtype: the dtype of float hyperparameters; None: the params' widest float dtype.
    Returns: a function with the factory's arguments (numbers or schedules) that returns a
      ``GradientTransformation`` whose state is an ``InjectHyperparamsState``.
    """
    signature = inspect.signature(factory)
    static = {static_args} if isinstance(static_args, str) else set(static_args)
    if not static <= set(signature.parameters):
        raise ValueError(f"inject_hyperparams: static_args {sorted(static - set(signature.parameters))} are "
                         f"not arguments of {getattr(factory, '__name__', factory)}{signature}")

    @functools.wraps(factory)
    def wrapped(*args: Any, **kwargs: Any) -> GradientTransformation:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        schedules, numbers, other = _split(bound.arguments, static)

        def values(count, stored, params):
            dtype = hyperparam_dtype or _float_dtype(params)
            h = {name: _as_array(v, dtype) for name, v in stored.items() if name not in schedules}
            return h | {name: _as_array(s(count), dtype) for name, s in schedules.items()}

        def init(params):
            count = jnp.zeros([], jnp.int32)
            h = values(count, numbers, params)
            return InjectHyperparamsState(count, h, factory(**other, **h).init(params))

        def update(grads, state, params=None, **extra_args):
            h = values(state.count, state.hyperparams, params if params is not None else grads)
            inner = with_extra_args_support(factory(**other, **h))
            updates, inner_state = inner.update(grads, state.inner_state, params, **extra_args)
            return updates, InjectHyperparamsState(state.count + 1, h, inner_state)

        return GradientTransformation(init, update)

    return wrapped


def set_hyperparams(state: InjectHyperparamsState, **values: Any) -> InjectHyperparamsState:
    """The state with some hyperparameters replaced, each kept in its stored dtype (so a jitted
    step does not recompile), e.g. ``set_hyperparams(opt_state, learning_rate=1e-4)``.

    Raises ``ValueError`` naming the known hyperparameters for an unknown name. A hyperparameter
    given as a schedule is recomputed at every update, so setting it has no effect.
    """
    unknown = set(values) - set(state.hyperparams)
    if unknown:
        raise ValueError(f"set_hyperparams: no hyperparameter {sorted(unknown)} in the state; "
                         f"it has {sorted(state.hyperparams)}")
    new = {k: jnp.asarray(v, state.hyperparams[k].dtype) for k, v in values.items()}
    return state._replace(hyperparams={**state.hyperparams, **new})
