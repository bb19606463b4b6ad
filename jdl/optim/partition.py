"""Transformations on part of the params: ``masked`` runs an inner transformation on the leaves a
mask selects and passes the others through; ``multi_transform`` gives each labelled group of
leaves its own transformation (differential learning rates: a small one for a pre-trained
backbone, a larger one for a new head); ``set_to_zero`` is the update of a frozen leaf.
optax's functions of the same names are the reference in the tests.

A leaf outside an inner transformation's group is handed to it as None (an empty subtree), so
the inner state holds moments only for its own leaves, as optax's ``MaskedNode`` does.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Union

import jax
import jax.numpy as jnp

from jdl.optim.base import EmptyState, GradientTransformation, is_none, with_extra_args_support
from jdl.optim.masking import Mask, resolve_mask


class MaskedState(NamedTuple):
    """inner_state: the inner transformation's state over the masked leaves only."""

    inner_state: Any


class MultiTransformState(NamedTuple):
    """inner_states: {label: that label's transformation state over its own leaves}."""

    inner_states: dict


def set_to_zero() -> GradientTransformation:
    """u = 0 (a frozen param: θ_{t+1} = θ_t)."""

    def update(grads, state, params=None):
        del params
        return jax.tree.map(lambda g: None if g is None else jnp.zeros_like(g), grads, is_leaf=is_none), state

    return GradientTransformation(lambda params: EmptyState(), update)


def _select(tree: Any, keep: Any) -> Any:
    """``tree`` with None in place of every leaf where ``keep`` is False."""
    if tree is None:
        return None
    return jax.tree.map(lambda k, x: x if k else None, keep, tree, is_leaf=is_none)


def masked(inner: GradientTransformation, mask: Mask) -> GradientTransformation:
    """u_i = inner(g)_i where mask_i is True, u_i = g_i elsewhere (optax.masked).

    Shapes: every leaf of g and u has its param's shape.
    Args:
      inner: the transformation to run on the masked leaves.
      mask: a tree of bools like the params (or a prefix of it), or ``params -> tree``.
    Returns: a ``GradientTransformation`` whose state is ``MaskedState``.
    """
    inner = with_extra_args_support(inner)

    def init(params):
        return MaskedState(inner.init(_select(params, resolve_mask("masked", mask, params))))

    def update(grads, state, params=None, **extra_args):
        keep = resolve_mask("masked", mask, grads if params is None else params)
        new, inner_state = inner.update(_select(grads, keep), state.inner_state,
                                        _select(params, keep), **extra_args)
        out = jax.tree.map(lambda k, g, u: u if k else g, keep, grads, new, is_leaf=is_none)
        return out, MaskedState(inner_state)

    return GradientTransformation(init, update)


Labels = Union[Any, Callable[[Any], Any]]


def _labels(labels: Labels, params: Any, transforms: Mapping[str, Any]) -> Any:
    tree = labels(params) if callable(labels) else labels
    missing = sorted({lab for lab in jax.tree.leaves(tree)} - set(transforms))
    if missing:
        raise ValueError(f"multi_transform: labels {missing} have no transformation; "
                         f"the transformations are for {sorted(transforms)}")
    return resolve_mask("multi_transform", tree, params)


def multi_transform(transforms: Mapping[str, GradientTransformation], param_labels: Labels) -> GradientTransformation:
    """u_i = T_{label(i)}(g)_i: each group of leaves with the same label gets its own
    transformation and state (optax.multi_transform).

    >>> from jdl.optim import adam
    >>> opt = multi_transform({'body': adam(1e-4), 'head': adam(1e-2)},
    ...                       {'body': {'w': 'body'}, 'head': {'w': 'head'}})

    Shapes: every leaf of g and u has its param's shape.
    Args:
      transforms: {label: transformation}.
      param_labels: a tree of label strings like the params (or a prefix), or ``params -> tree``
        (e.g. ``jdl.optim.label_by_pattern``).
    Returns: a ``GradientTransformation`` whose state is ``MultiTransformState``.
    """
    transforms = {k: with_extra_args_support(t) for k, t in transforms.items()}

    def init(params):
        tree = _labels(param_labels, params, transforms)
        return MultiTransformState({k: t.init(_select(params, jax.tree.map(lambda l, k=k: l == k, tree)))
                                    for k, t in transforms.items()})

    def update(grads, state, params=None, **extra_args):
        tree = _labels(param_labels, grads if params is None else params, transforms)
        out, states = grads, {}
        for k, t in transforms.items():
            keep = jax.tree.map(lambda l, k=k: l == k, tree)
            new, states[k] = t.update(_select(grads, keep), state.inner_states[k], _select(params, keep),
                                      **extra_args)
            out = jax.tree.map(lambda m, o, u: u if m else o, keep, out, new, is_leaf=is_none)
        return out, MultiTransformState(states)

    return GradientTransformation(init, update)
