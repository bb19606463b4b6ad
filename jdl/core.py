"""The one contract of jdl: a layer is a pair of pure functions, ``init`` and ``apply``.

    init:  (key, x) -> (params, state)
    apply: (params, state, x, *, key=None, train=False, **accepts) -> (y, state)

``x`` in ``init`` is an example input (an array or a ``jax.ShapeDtypeStruct``); ``init`` infers
every shape from it and computes nothing on its values. ``params`` are what an optimizer
trains, ``state`` is what the layer updates itself (BatchNorm's running statistics); both are
nested dicts of arrays with readable keys, ``{}`` when a layer has none. ``key`` is needed only
by stochastic layers, ``train`` is a static Python bool, and ``apply`` is pure.

Every ``apply`` takes ``key`` and ``train``, plus the keywords named in its module's
``accepts`` (an attention layer's ``mask=``) and no others: a keyword outside them, such as
the typo ``trian=True``, raises a ``TypeError`` naming the layer while tracing, never a silent
eval-mode run. A combinator accepts the union of its children's ``accepts`` and hands each
child only the keywords that child accepts.
"""

from __future__ import annotations

import difflib
import functools
import math
from typing import Any, Callable, Iterable, NamedTuple, Protocol, Sequence

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
    """``apply(params, state, x, *, key=None, train=False, **accepts) -> (y, state)``: pure.

    ``**accepts`` stands for the keywords the module declares in ``Module.accepts``
    (``mask=``); any other keyword is a ``TypeError`` that names the layer. A leaf names each
    one in its signature (``leaf`` adds the message); a combinator checks its ``**extra``.
    """

    def __call__(
        self, params: Params, state: State, x: Any, *, key: PRNGKey | None = None,
        train: bool = False, **accepts: Any,
    ) -> tuple[Any, State]: ...


class Module(NamedTuple):
    """A layer or a model: ``init(key, x) -> (params, state)`` and
    ``apply(params, state, x, *, key=None, train=False, **accepts) -> (y, state)``.

    ``name`` is the short, readable kind of the layer (``dense``, ``conv2d``); combinators use
    it to key their children's params (``0_dense``). ``children`` lists the sub-modules a
    combinator is built from, so that ``jdl.summary`` can show them; leaves have none.
    ``accepts`` names the keywords ``apply`` takes beyond ``key`` and ``train`` (``{'mask'}``);
    combinators pass such a keyword only to the children whose ``accepts`` has it. Build a leaf
    with ``leaf`` to have unknown keywords refused with the layer's name. ``param_name`` is the name a
    combinator keys this child's params by in place of ``f"{index}_{name}"`` (``None``: by
    position); set it with ``jdl.nn.named('layer1', m)``.

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
    accepts: frozenset[str] = frozenset()
    param_name: str | None = None


def check_keywords(layer: str, extra: dict[str, Any], accepts: frozenset[str],
                   combinator: bool = False) -> None:
    """Raise ``TypeError`` for a keyword in ``extra`` outside ``accepts``, naming the layer,
    the keywords it takes, and the closest one when it looks like a typo (``trian``); for a
    combinator (no child takes it) otherwise how a layer declares that it takes one."""
    unknown = sorted(set(extra) - set(accepts))
    if not unknown:
        return
    takes = ", ".join(["key", "train", *sorted(accepts)])
    words, them = ("argument", "it") if len(unknown) == 1 else ("arguments", "them")
    why = f"no child takes {them}; they take {takes}" if combinator else f"it takes {takes}"
    close = difflib.get_close_matches(unknown[0], ["key", "train", *accepts], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    if combinator and not close:
        hint = f"; a layer that takes it says so: leaf(init, apply, name, accepts={{{unknown[0]!r}}})"
    raise TypeError(f"{layer}: apply got an unexpected keyword {words} "
                    f"{', '.join(map(repr, unknown))} ({why}{hint})")


def leaf(init: InitFn, apply: ApplyFn, name: str, accepts: Iterable[str] = ()) -> Module:
    """A childless ``Module`` whose ``apply`` refuses keywords outside key, train and
    ``accepts`` with a ``TypeError`` naming the layer (``apply`` itself names each keyword it
    takes, with no ``**kwargs``).

    >>> m = leaf(lambda k, x: ({}, {}), lambda p, s, x, *, key=None, train=False: (x, s), "id")
    >>> m.apply({}, {}, 1.0, trian=True)
    Traceback (most recent call last):
    TypeError: id: apply got an unexpected keyword argument 'trian' (it takes key, train; did you mean 'train'?)
    """
    accepts = frozenset(accepts)

    @functools.wraps(apply)
    def checked(params: Params, state: State, x: Any, **kwargs: Any) -> tuple[Any, State]:
        check_keywords(name, {k: v for k, v in kwargs.items() if k not in ("key", "train")},
                       accepts)
        return apply(params, state, x, **kwargs)

    return Module(init, checked, name, (), accepts)


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


def check_integer(layer: str, x: Any, what: str = "token ids") -> None:
    """Raise ``TypeError`` if ``x`` is not an integer array (token ids, class labels)."""
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(f"{layer}: expected integer {what}, got dtype {x.dtype}; "
                        "convert with .astype(jnp.int32)")


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
    """True when a param's key path ends in ``w`` (Dense and convolution weights) or a key
    starting with ``w_`` (a recurrent layer's input and hidden weights ``w_x``, ``w_h``), False
    for biases ``b``, ``b_h`` and norm ``gamma``/``beta``: the course's "penalize weights, not
    biases". Used by ``jdl.regularizers`` (loss terms) and ``jdl.optim.weights_only`` (update
    masks) alike.

    >>> [is_weight((jax.tree_util.DictKey(k),)) for k in ("w", "w_h", "b", "b_h", "gamma")]
    [True, True, False, False, False]
    """
    if not path:
        return False
    key = getattr(path[-1], "key", None)
    return isinstance(key, str) and (key == "w" or key.startswith("w_"))


def path_str(path: tuple) -> str:
    """A pytree key path as 'params/1_dense/w' (dict keys, NamedTuple fields, list indices)."""
    return "/".join(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)
