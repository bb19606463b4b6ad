"""Weight decay as a gradient transformation: u = g + λ·θ (on the masked leaves).

Placed before the moments (``chain(add_decayed_weights(λ), scale_by_adam(), ...)``) it is the
gradient of the L2 penalty λ/2·‖θ‖² ("Adam + L2"); placed after them and before the learning rate
(``chain(scale_by_adam(), add_decayed_weights(λ), scale_by_learning_rate(η))``) it is AdamW's
decoupled decay θ ← θ − η·(m̂/(√v̂+ε) + λ·θ). With plain SGD the two coincide:
θ ← (1 − ηλ)·θ − η·g.
"""

from __future__ import annotations

import jax

from jdl.optim.base import EmptyState, GradientTransformation, check_nonnegative, check_tree
from jdl.optim.masking import Mask, resolve_mask


def add_decayed_weights(weight_decay: float = 0.0, mask: Mask | None = None) -> GradientTransformation:
    """u = g + λ·θ on the leaves where ``mask`` is True, u = g elsewhere (optax's name and defaults).

    Shapes: every leaf of g, θ and u has the same shape.
    Args:
      weight_decay: λ ≥ 0.
      mask: a tree of bools like the params, or a function ``params -> tree`` (e.g.
        ``jdl.optim.weights_only``); None decays every leaf.
    Returns: a ``GradientTransformation`` whose ``update`` needs ``params``.
    """
    check_nonnegative("add_decayed_weights", "weight_decay", weight_decay)

    def update(grads, state, params=None):
        if params is None:
            raise ValueError("add_decayed_weights: update needs the params (θ) to decay; call "
                             "update(grads, opt_state, params)")
        check_tree("add_decayed_weights", grads, params)
        m = resolve_mask("add_decayed_weights", mask, params)
        return jax.tree.map(lambda g, p, keep: g + weight_decay * p if keep else g,
                            grads, params, m), state

    return GradientTransformation(lambda params: EmptyState(), update)
