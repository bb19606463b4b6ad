"""Which leaves a transformation touches: a mask is a pytree of bools shaped like the params, or a
function ``params -> mask`` (optax's convention). "Penalize weights, not biases" is
``mask=weights_only``.
"""

from __future__ import annotations

from typing import Any, Callable, Union

import jax

from jdl.core import is_weight
from jdl.optim.base import check_tree

Mask = Union[Any, Callable[[Any], Any]]


def resolve_mask(name: str, mask: Mask | None, params: Any) -> Any:
    """The mask as a tree of Python bools with the params' structure (all True when ``mask`` is None).

    Raises ``ValueError`` showing both structures when the mask's structure differs from the params'.
    """
    if mask is None:
        return jax.tree.map(lambda _: True, params)
    tree = mask(params) if callable(mask) else mask
    m, p = jax.tree.structure(tree), jax.tree.structure(params)
    if m != p:
        raise ValueError(f"{name}: the mask's structure differs from the params'.\n  mask:   {m}\n  params: {p}")
    return tree


def weights_only(params: Any) -> Any:
    """Mask that is True for leaves whose key is ``w`` (dense/conv kernels), False for biases and
    norm scales/shifts: the course's "penalize weights, not biases"."""
    return jax.tree_util.tree_map_with_path(lambda path, _: is_weight(path), params)


def add_to_masked(name: str, term: Callable[[Any], Any], grads: Any, params: Any, mask: Mask | None) -> Any:
    """u = g + term(θ) on the leaves where the mask is True, u = g elsewhere.

    Raises ``ValueError`` when ``params`` is None (the term needs θ) or its structure differs from
    the gradient's.
    """
    if params is None:
        raise ValueError(f"{name}: update needs the params (θ); call update(grads, opt_state, params)")
    check_tree(name, grads, params)
    m = resolve_mask(name, mask, params)
    return jax.tree.map(lambda g, p, keep: g + term(p) if keep else g, grads, params, m)
