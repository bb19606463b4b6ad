"""Freezing and differential learning rates by path pattern (the course's transfer learning:
freeze the pre-trained backbone and train a new head, or fine-tune all of it with a smaller
learning rate on the backbone than on the head).

    freeze(p):   u_i = 0 for every leaf i whose path matches p, u_i = g_i elsewhere
                 (= optax.masked(optax.set_to_zero(), mask)); put it last in a chain so no
                 term (weight decay included) moves a frozen leaf.
    multi_transform(T, label_by_pattern({...})): u_i = T_{label(i)}(g)_i, one optimizer (and
                 one learning rate) per group of paths.

Patterns are ``jdl.paths`` globs over paths such as 'blocks/0_block/attn/q/w' ('**' spans
segments, '*' stays inside one) or compiled regular expressions.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax

from jdl.core import path_str
from jdl.optim.base import GradientTransformation, chain
from jdl.optim.partition import masked, multi_transform, set_to_zero
from jdl.paths import Patterns, as_patterns, matches, path_mask


def trainable_mask(params: Any, frozen: Patterns) -> Any:
    """A tree of bools like ``params``: False at the leaves under a ``frozen`` pattern, True
    elsewhere (the mask of what trains).

    >>> trainable_mask({'body': {'w': 1.0}, 'head': {'w': 2.0}}, 'body/**')
    {'body': {'w': False}, 'head': {'w': True}}
    """
    return jax.tree.map(lambda m: not m, path_mask(params, as_patterns(frozen, "trainable_mask")))


def freeze(patterns: Patterns) -> GradientTransformation:
    """u_i = 0 where leaf i's path matches one of ``patterns``, u_i = g_i elsewhere.

    Shapes: every leaf of g and u has its param's shape.
    Args:
      patterns: a glob, an ``re.Pattern`` or a list of them (``'blocks/**'``).
    Returns: ``masked(set_to_zero(), path_mask(·, patterns))``, equal to optax's
      ``masked(set_to_zero(), mask)`` step for step.
    """
    pats = as_patterns(patterns, "freeze")
    return masked(set_to_zero(), lambda params: path_mask(params, pats))


def frozen(inner: GradientTransformation, patterns: Patterns) -> GradientTransformation:
    """``inner`` followed by ``freeze(patterns)``: the optimizer of a partly frozen model
    (e.g. ``frozen(adamw(1e-3, weight_decay=0.1), 'base/**')`` for LoRA)."""
    return chain(inner, freeze(patterns))


def label_by_pattern(groups: Mapping[str, Patterns], default: str | None = None) -> Callable[[Any], Any]:
    """``params -> tree of labels``: each leaf gets the first label (in ``groups``' order) one of
    whose patterns matches its path, else ``default``; for ``multi_transform``.

    >>> label_by_pattern({'head': 'head/**'}, default='body')({'body': {'w': 0}, 'head': {'w': 0}})
    {'body': {'w': 'body'}, 'head': {'w': 'head'}}

    Raises ``ValueError`` naming the path of a leaf that matches no group when there is no default.
    """
    groups = {k: as_patterns(v, "label_by_pattern") for k, v in groups.items()}

    def label(path, _):
        s = path_str(path)
        for name, pats in groups.items():
            if matches(s, pats):
                return name
        if default is None:
            raise ValueError(f"label_by_pattern: {s!r} matches no group of {sorted(groups)} and "
                             f"there is no default; pass default='...'")
        return default

    return lambda params: jax.tree_util.tree_map_with_path(label, params)


def differential_lr(transforms: Mapping[str, GradientTransformation], groups: Mapping[str, Patterns],
                    default: str | None = None) -> GradientTransformation:
    """One transformation per group of paths:
    ``multi_transform(transforms, label_by_pattern(groups, default))``.

    >>> from jdl.optim import adam
    >>> opt = differential_lr({'body': adam(1e-4), 'head': adam(1e-3)}, {'head': 'head/**'}, 'body')
    """
    return multi_transform(transforms, label_by_pattern(groups, default))
