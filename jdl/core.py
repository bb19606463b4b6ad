"""The one contract of jdl: a layer is a pair of pure functions, ``init`` and ``apply``.

    init:  (key, x) -> (params, state)
    apply: (params, state, x, *, key=None, train=False, **extra) -> (y, state)

``x`` in ``init`` is an example input (an array or a ``jax.ShapeDtypeStruct``); ``init`` infers
every shape from it and computes nothing on its values. ``params`` are what an optimizer
trains, ``state`` is what the layer updates itself (BatchNorm's running statistics); both are
nested dicts of arrays with readable keys, ``{}`` when a layer has none. ``key`` is needed only
by stochastic layers, ``train`` is a static Python bool, and ``apply`` is pure.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Protocol, Sequence

import jax
import jax.numpy as jnp

Array = jax.Array
PRNGKey = jax.Array
Shape = tuple[int, ...]
Params = dict[str, Any]
State = dict[str, Any]
Initializer = Callable[[PRNGKey, Shape, Any], Array]


class InitFn(Protocol):
    """``init(key, x) -> (params, state)``: every shape inferred from the example input ``x``."""

    def __call__(self, key: PRNGKey, x: Any) -> tuple[Params, State]: ...


class ApplyFn(Protocol):
    """``apply(params, state, x, *, key=None, train=False, **extra) -> (y, state)``: pure."""

    def __call__(
        self, params: Params, state: State, x: Any, *, key: PRNGKey | None = None,
        train: bool = False, **extra: Any,
    ) -> tuple[Any, State]: ...


class Module(NamedTuple):
    """A layer or a model: ``init(key, x) -> (params, state)`` and
    ``apply(params, state, x, *, key=None, train=False) -> (y, state)``.

    ``name`` is the short, readable kind of the layer (``dense``, ``conv2d``); combinators use
    it to key their children's params (``0_dense``). ``children`` lists the sub-modules a
    combinator is built from, so that ``jdl.summary`` can show them; leaves have none.

    >>> import jax, jdl
    >>> layer = jdl.nn.Dense(3)
    >>> params, state = layer.init(jax.random.key(0), jax.numpy.ones((2, 4)))
    >>> jax.tree.map(jax.numpy.shape, params)
    {'b': (3,), 'w': (4, 3)}
    """

    init: InitFn
    apply: ApplyFn
    name: str = "module"
    children: tuple["Module", ...] = ()


def shape_struct(x: Any) -> jax.ShapeDtypeStruct:
    """The shape and dtype of an example input, without its values (arrays or structs)."""
    if isinstance(x, jax.ShapeDtypeStruct):
        return x
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return jax.ShapeDtypeStruct(tuple(x.shape), x.dtype)
    arr = jnp.asarray(x)
    return jax.ShapeDtypeStruct(arr.shape, arr.dtype)


def output_struct(module: Module, params: Params, state: State, x: Any, **kwargs: Any):
    """The ``ShapeDtypeStruct`` of ``module.apply``'s output, by ``jax.eval_shape`` (no FLOPs)."""
    y, _ = jax.eval_shape(lambda p, s, x: module.apply(p, s, x, **kwargs), params, state, x)
    return y


def check_rank(layer: str, x: Any, ranks: Sequence[int], layout: str) -> None:
    """Raise ``ValueError`` unless ``x.ndim`` is one of ``ranks``; ``layout`` names them (e.g. 'B, D')."""
    if x.ndim not in ranks:
        raise ValueError(
            f"{layer}: expected an input of rank {' or '.join(map(str, ranks))} ({layout}), "
            f"got shape {tuple(x.shape)} of rank {x.ndim}"
        )


def check_features(layer: str, x: Any, expected: int, what: str = "d_in", axis: int = -1) -> None:
    """Raise ``ValueError`` if ``x.shape[axis]`` differs from what the layer was initialized for."""
    if x.ndim == 0 or x.shape[axis] != expected:
        got = "a scalar" if x.ndim == 0 else f"{what}={x.shape[axis]}"
        raise ValueError(
            f"{layer}: input of shape {tuple(x.shape)} has {got} but the layer was initialized "
            f"with {what}={expected}"
        )


def check_key(layer: str, key: PRNGKey | None, train: bool) -> None:
    """Stochastic layers need a key in training; say how to pass one."""
    if train and key is None:
        raise ValueError(
            f"{layer} is stochastic and needs a random key when train=True: call "
            f"apply(params, state, x, key=jax.random.key(seed), train=True)"
        )


def check_float(layer: str, x: Any) -> None:
    """Raise ``TypeError`` if ``x`` is not a floating-point array."""
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{layer}: expected a floating-point input, got dtype {x.dtype}")


def fold_in(key: PRNGKey | None, index: int) -> PRNGKey | None:
    """``jax.random.fold_in(key, index)``, passing ``None`` through (deterministic calls)."""
    return None if key is None else jax.random.fold_in(key, index)


def param_count(params: Any) -> int:
    """Number of scalars in a pytree of arrays: Σ_leaves prod(leaf.shape).

    >>> param_count({'w': jax.numpy.zeros((2, 3)), 'b': jax.numpy.zeros(3)})
    9
    """
    return sum(math.prod(jnp.shape(leaf)) for leaf in jax.tree.leaves(params))


def is_weight(path: tuple) -> bool:
    """True when a param's key path ends in ``w`` (Dense and convolution weights), False for
    biases ``b`` and norm ``gamma``/``beta``: the course's "penalize weights, not biases". Used by
    ``jdl.regularizers`` (loss terms) and ``jdl.optim.weights_only`` (update masks) alike."""
    return bool(path) and getattr(path[-1], "key", None) == "w"


def path_str(path: tuple) -> str:
    """A pytree key path as 'params/1_dense/w' (dict keys, NamedTuple fields, list indices)."""
    return "/".join(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)
