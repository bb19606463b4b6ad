"""Which leaves a transformation touches: a mask is a pytree of bools shaped like the params (or a
prefix of them: a bool at an inner node covers its whole subtree), or a function
``params -> mask`` (optax's convention). "Penalize weights, not biases" is ``mask=weights_only``.
"""

from __future__ import annotations

from typing import Any, Callable, Union

import jax

from jdl.core import is_weight
from jdl.optim.base import check_tree, is_none

Mask = Union[Any, Callable[[Any], Any]]


def resolve_mask(name: str, mask: Mask | None, params: Any) -> Any:
    """The mask as a tree of bools with the params' structure (all True when ``mask`` is None); a
    mask leaf above params leaves (a prefix mask) is copied to every leaf below it.

    Raises ``ValueError`` showing both structures when the mask is not a prefix of the params.
    """
    if mask is None:
        return jax.tree.map(lambda _: True, params, is_leaf=is_none)
    tree = mask(params) if callable(mask) else mask
    try:
        return jax.tree.map(lambda keep, sub: jax.tree.map(lambda _: keep, sub, is_leaf=is_none),
                            tree, params, is_leaf=is_none)
    except ValueError:
        m, p = jax.tree.structure(tree), jax.tree.structure(params)
        raise ValueError(f"{name}: the mask's structure differs from the params' and is not a prefix of it.\n"
                         f"  mask:   {m}\n  params: {p}") from None


def weights_only(params: Any) -> Any:
    """Mask that is True for leaves whose key is ``w`` (dense/conv kernels), False for biases and
    norm scales/shifts: the course's "penalize weights, not biases"."""
    return jax.tree_util.tree_map_with_path(lambda path, _: is_weight(path), params)


def add_to_masked(name: str, term: Callable[[Any], Any], grads: Any, params: Any, mask: Mask | None) -> Any:
    """u = g + term(θ) on the leaves where the mask is True, u = g elsewhere; a None gradient (a
    leaf, or the whole tree: optax's ``update(None, …)``) gives None.

    Raises ``ValueError`` when ``params`` is None (the term needs θ) or its structure differs from
    the gradient's.
    """
    if params is None:
        raise ValueError(f"{name}: update needs the params (θ); call update(grads, opt_state, params)")
    if grads is None:
        return None
    check_tree(name, grads, params)
    m = resolve_mask(name, mask, params)
    return jax.tree.map(lambda g, p, keep: None if g is None else g + term(p) if keep else g,
                        grads, params, m, is_leaf=is_none)
