"""The optimizer protocol (optax's): a gradient transformation is a pair of pure functions,

    init:   (params) -> opt_state
    update: (grads, opt_state, params=None) -> (updates, opt_state)

and ``apply_updates(params, updates)`` returns params + updates. Transformations compose with
``chain``; jdl's and optax's are interchangeable because they share this shape.
"""

from __future__ import annotations

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


def check_tree(name: str, grads: Any, params: Any) -> None:
    """Raise ``ValueError`` showing both structures if grads and params differ in structure."""
    if params is None:
        return
    g, p = jax.tree.structure(grads), jax.tree.structure(params)
    if g != p:
        raise ValueError(f"{name}: the gradient tree's structure differs from the params'.\n"
                         f"  grads:  {g}\n  params: {p}")


def apply_updates(params: Params, updates: Updates) -> Params:
    """θ ← θ + u, leaf by leaf, keeping each param's dtype."""
    check_tree("apply_updates", updates, params)
    return jax.tree.map(lambda p, u: (p + u).astype(p.dtype) if p is not None else None,
                        params, updates, is_leaf=lambda x: x is None)


def identity() -> GradientTransformation:
    """u = g."""
    return GradientTransformation(lambda params: EmptyState(),
                                  lambda grads, state, params=None: (grads, state))


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Compose transformations: u = T_n(… T_1(g)); the state is the tuple of their states."""

    def init(params: Params) -> tuple:
        return tuple(t.init(params) for t in transforms)

    def update(grads: Updates, state: tuple, params: Params | None = None):
        check_tree("chain", grads, params)
        if len(state) != len(transforms):
            raise ValueError(f"chain: expected a state of {len(transforms)} transformations, got {len(state)}")
        new_state = []
        for t, s in zip(transforms, state):
            grads, s = t.update(grads, s, params)
            new_state.append(s)
        return grads, tuple(new_state)

    return GradientTransformation(init, update)


def scale(factor: float) -> GradientTransformation:
    """u = factor · g."""

    def update(grads, state, params=None):
        del params
        return jax.tree.map(lambda g: factor * g, grads), state

    return GradientTransformation(lambda params: EmptyState(), update)


def scale_by_schedule(schedule: Schedule) -> GradientTransformation:
    """u_t = schedule(t) · g_t, with t the number of updates made before this one."""

    def init(params: Params) -> ScaleByScheduleState:
        del params
        return ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

    def update(grads, state, params=None):
        del params
        factor = schedule(state.count)
        updates = jax.tree.map(lambda g: jnp.asarray(factor, g.dtype) * g, grads)
        return updates, ScaleByScheduleState(count=state.count + 1)

    return GradientTransformation(init, update)


def abs_sq(x: jax.Array) -> jax.Array:
    """|x|² = x·x̄: x² for real x, and real (not x², which is complex) for complex x."""
    return (x * jnp.conj(x)).real if jnp.iscomplexobj(x) else x * x


def check_learning_rate(name: str, learning_rate: ScalarOrSchedule) -> None:
    """A constant learning rate must be a finite float ≥ 0."""
    if callable(learning_rate):
        return
    lr = float(learning_rate)
    if not lr >= 0 or lr == float("inf"):
        raise ValueError(f"{name}: learning_rate must be a finite number >= 0 or a schedule, got {learning_rate!r}")


def check_decay(name: str, arg: str, value: float) -> None:
    """A momentum or decay rate β must lie in [0, 1) (β = 1 never forgets, β < 0 oscillates)."""
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name}: {arg} must be in [0, 1), got {value!r}")


def check_positive(name: str, arg: str, value: float) -> None:
    """An epsilon (or a clipping threshold) must be a finite number > 0."""
    v = float(value)
    if not v > 0 or v == float("inf"):
        raise ValueError(f"{name}: {arg} must be a finite number > 0, got {value!r}")


def check_nonnegative(name: str, arg: str, value: float) -> None:
    """A weight decay or penalty strength λ must be a finite number >= 0."""
    v = float(value)
    if not v >= 0 or v == float("inf"):
        raise ValueError(f"{name}: {arg} must be a finite number >= 0, got {value!r}")


def scale_by_learning_rate(learning_rate: ScalarOrSchedule, flip_sign: bool = True) -> GradientTransformation:
    """u = −η·g (descent) for a constant η, or u_t = −η(t)·g_t for a schedule η(t)."""
    sign = -1.0 if flip_sign else 1.0
    if callable(learning_rate):
        return scale_by_schedule(lambda count: sign * learning_rate(count))
    return scale(sign * learning_rate)
