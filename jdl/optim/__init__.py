"""Optimizers in the optax style, written from scratch (optax is the reference in the tests)."""

from jdl.optim.aliases import sgd
from jdl.optim.base import (
    EmptyState, GradientTransformation, ScaleByScheduleState, apply_updates, chain, identity,
    scale, scale_by_learning_rate, scale_by_schedule,
)
