"""Ready-made optimizers with optax's names, arguments and defaults."""

from __future__ import annotations

from jdl.optim.base import (
    GradientTransformation, ScalarOrSchedule, chain, check_learning_rate, scale_by_learning_rate,
)


def sgd(learning_rate: ScalarOrSchedule) -> GradientTransformation:
    """Stochastic gradient descent: θ_{t+1} = θ_t − η_t·g_t, g_t the minibatch gradient.

    ``learning_rate`` is a float η or a schedule t ↦ η_t (t counts the updates made so far).
    """
    check_learning_rate("sgd", learning_rate)
    return chain(scale_by_learning_rate(learning_rate))
