"""Weight decay as a gradient transformation: u = g + λ·θ (on the masked leaves).

Placed before the moments (``chain(add_decayed_weights(λ), scale_by_adam(), ...)``) it is the
gradient of the L2 penalty λ/2·‖θ‖² ("Adam + L2"); placed after them and before the learning rate
(``chain(scale_by_adam(), add_decayed_weights(λ), scale_by_learning_rate(η))``) it is AdamW's
decoupled decay θ ← θ − η·(m̂/(√v̂+ε) + λ·θ). With plain SGD the two coincide:
θ ← (1 − ηλ)·θ − η·g.
"""

from __future__ import annotations

from jdl.optim.base import EmptyState, GradientTransformation, check_nonnegative
from jdl.optim.masking import Mask, add_to_masked


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
        return add_to_masked("add_decayed_weights", lambda p: weight_decay * p, grads, params, mask), state

    return GradientTransformation(lambda params: EmptyState(), update)
