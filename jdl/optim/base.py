"""The optimizer protocol (optax's): a gradient transformation is a pair of pure functions,

    init:   (params) -> opt_state
    update: (grads, opt_state, params=None, **extra_args) -> (updates, opt_state)

and ``apply_updates(params, updates)`` returns params + updates. Transformations compose with
``chain``; jdl's and optax's are interchangeable because they share this shape. ``extra_args``
(optax's newer protocol: e.g. ``value=loss`` for a line search) pass through ``chain`` to the
transforms that take them and are dropped for the others. A gradient leaf may be None (a frozen
param): its update is None and ``apply_updates`` leaves that param as it is.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, NamedTuple, Union

import jax
import jax.numpy as jnp

Params = Any
Updates = Any
OptState = Any
Schedule = Callable[[jax.Array], jax.Array]
ScalarOrSchedule = Union[float, Schedule]


class GradientTransformation(NamedTuple):
    """``init(params) -> opt_state``; ``update(grads, opt_state, params=None) -> (updates,
    opt_state)``."""

    init: Callable[[Params], OptState]
    update: Callable[..., tuple[Updates, OptState]]


class EmptyState(NamedTuple):
    """The state of a stateless transformation."""


class ScaleByScheduleState(NamedTuple):
    """count: the number of updates made so far (t)."""

    count: jax.Array


def is_none(x: Any) -> bool:
    """A None leaf, kept as a leaf in tree maps (``is_leaf=is_none``) so a None gradient lines up
    with the param it belongs to."""
    return x is None


def map_updates(f: Callable[..., Any], grads: Any, *trees: Any) -> Any:
    """u_i = f(g_i, *trees_i) leaf by leaf, and u_i = None where g_i is None (optax's rule)."""
    return jax.tree.map(lambda g, *rest: None if g is None else f(g, *rest), grads, *trees, is_leaf=is_none)


def map_moment(f: Callable[..., Any], grads: Any, moment: Any) -> Any:
    """m_i ← f(g_i, m_i) leaf by leaf; where g_i is None the moment is kept (optax sets it to None,
    which changes the state's structure and breaks a ``lax.scan`` carry)."""
    return jax.tree.map(lambda g, m: m if g is None else f(g, m), grads, moment, is_leaf=is_none)


def check_tree(name: str, grads: Any, params: Any) -> None:
    """Raise ``ValueError`` showing both structures if grads and params differ in structure
    (a None gradient leaf matches any param leaf)."""
    if params is None:
        return
    g, p = jax.tree.structure(grads, is_leaf=is_none), jax.tree.structure(params, is_leaf=is_none)
    if g != p:
        raise ValueError(f"{name}: the gradient tree's structure differs from the params'.\n"
                         f"  grads:  {g}\n  params: {p}")


def apply_updates(params: Params, updates: Updates) -> Params:
    """θ ← θ + u, leaf by leaf, keeping each param's dtype; a None update leaves θ as it is."""
    check_tree("apply_updates", updates, params)
    return jax.tree.map(lambda p, u: p if p is None or u is None else (p + u).astype(p.dtype),
                        params, updates, is_leaf=is_none)


def takes_extra_args(update: Callable[..., Any]) -> bool:
    """Whether ``update`` accepts ``**extra_args`` (optax's newer protocol)."""
    try:
        kinds = [p.kind for p in inspect.signature(update).parameters.values()]
    except (TypeError, ValueError):
        return False
    return inspect.Parameter.VAR_KEYWORD in kinds


def with_extra_args_support(t: GradientTransformation) -> GradientTransformation:
    """``t`` with an ``update`` that takes ``**extra_args``: its own if it does, else one that
    drops them (optax's function of the same name)."""
    if takes_extra_args(t.update):
        return t

    def update(grads, state, params=None, **extra_args):
        del extra_args
        return t.update(grads, state, params)

    return GradientTransformation(t.init, update)


def identity() -> GradientTransformation:
    """u = g."""
    return GradientTransformation(lambda params: EmptyState(),
                                  lambda grads, state, params=None: (grads, state))


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Compose transformations: u = T_n(… T_1(g)); the state is the tuple of their states."""

    transforms = tuple(with_extra_args_support(t) for t in transforms)

    def init(params: Params) -> tuple:
        return tuple(t.init(params) for t in transforms)

    def update(grads: Updates, state: tuple, params: Params | None = None, **extra_args):
        if grads is not None:  # update(None, …) is optax's "no gradient": each transform decides
            check_tree("chain", grads, params)
        if len(state) != len(transforms):
            raise ValueError(f"chain: expected a state of {len(transforms)} transformations, got {len(state)}")
        new_state = []
        for t, s in zip(transforms, state):
            grads, s = t.update(grads, s, params, **extra_args)
            new_state.append(s)
        return grads, tuple(new_state)

    return GradientTransformation(init, update)


def scale(factor: float) -> GradientTransformation:
    """u = factor · g."""

    def update(grads, state, params=None):
        del params
        return map_updates(lambda g: factor * g, grads), state

    return GradientTransformation(lambda params: EmptyState(), update)


def scale_by_schedule(schedule: Schedule) -> GradientTransformation:
    """u_t = schedule(t) · g_t, with t the number of updates made before this one."""

    def init(params: Params) -> ScaleByScheduleState:
        del params
        return ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

    def update(grads, state, params=None):
        del params
        factor = schedule(state.count)
        updates = map_updates(lambda g: jnp.asarray(factor, g.dtype) * g, grads)
        return updates, ScaleByScheduleState(count=state.count + 1)

    return GradientTransformation(init, update)


def abs_sq(x: jax.Array) -> jax.Array:
    """|x|² = x·x̄: x² for real x, and real (not x², which is complex) for complex x."""
    return (x * jnp.conj(x)).real if jnp.iscomplexobj(x) else x * x


def bias_correction(beta: Any, count: jax.Array) -> jax.Array:
    """1 − β^t as float32 operations on the count array, so it rounds the same eager and jitted.

    With an integer count, eager JAX raises β to the power by repeated float32 products, and the
    jitted program by a float pow; the two differ by an ulp of 1, which 1 − β^t (≈ 0.003 for
    β = 0.999, t = 3) turns into ~2e-5 relative. A float exponent takes the same path both ways.
    """
    return 1 - jnp.power(jnp.asarray(beta, jnp.float32), count.astype(jnp.float32))


def concrete(value: Any) -> float | None:
    """``value`` as a Python float, or None when it is a traced array (a hyperparameter that
    ``inject_hyperparams`` feeds in under jit): a traced value cannot be checked in Python."""
    if isinstance(value, jax.core.Tracer):
        return None
    return float(value)


def check_learning_rate(name: str, learning_rate: ScalarOrSchedule) -> None:
    """A constant learning rate must be a finite float ≥ 0."""
    if callable(learning_rate) or (lr := concrete(learning_rate)) is None:
        return
    if not lr >= 0 or lr == float("inf"):
        raise ValueError(f"{name}: learning_rate must be a finite number >= 0 or a schedule, got {learning_rate!r}")


def check_decay(name: str, arg: str, value: float) -> None:
    """A momentum or decay rate β must lie in [0, 1) (β = 1 never forgets, β < 0 oscillates)."""
    v = concrete(value)
    if v is not None and not 0.0 <= v < 1.0:
        raise ValueError(f"{name}: {arg} must be in [0, 1), got {value!r}")


def check_positive(name: str, arg: str, value: float) -> None:
    """An epsilon (or a clipping threshold) must be a finite number > 0."""
    v = concrete(value)
    if v is not None and (not v > 0 or v == float("inf")):
        raise ValueError(f"{name}: {arg} must be a finite number > 0, got {value!r}")


def check_nonnegative(name: str, arg: str, value: float) -> None:
    """A weight decay or penalty strength λ must be a finite number >= 0."""
    v = concrete(value)
    if v is not None and (not v >= 0 or v == float("inf")):
        raise ValueError(f"{name}: {arg} must be a finite number >= 0, got {value!r}")


def scale_by_learning_rate(learning_rate: ScalarOrSchedule, flip_sign: bool = True) -> GradientTransformation:
    """u = −η·g (descent) for a constant η, or u_t = −η(t)·g_t for a schedule η(t)."""
    sign = -1.0 if flip_sign else 1.0
    if callable(learning_rate):
        return scale_by_schedule(lambda count: sign * learning_rate(count))
    return scale(sign * learning_rate)
