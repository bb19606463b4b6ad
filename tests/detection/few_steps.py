"""A few Adam steps of a ``Detector`` on one fixed batch, for the "training lowers the loss" tests."""

import jax
import jax.numpy as jnp


def train_few_steps(detector, images, targets, steps: int = 15, learning_rate: float = 3e-3):
    """``steps`` steps of ``jdl.train.make_step`` on ``detector.loss`` (the same key each step, so
    only the parameters change). Returns (the losses, the final TrainState)."""
    from jdl.optim import adam
    from jdl.train import make_step
    from jdl.train.state import TrainState

    params, state = detector.init(jax.random.key(0), images)
    opt = adam(learning_rate)
    step = make_step(lambda p, s, b, k: detector.loss(p, s, b[0], b[1], jax.random.key(0)), opt)
    train_state = TrainState(params, state, opt.init(params), jnp.zeros([], jnp.int32), jax.random.key(1))
    losses = []
    for _ in range(steps):
        train_state, m = step(train_state, (images, targets))
        losses.append(float(m["loss"]))
    return losses, train_state
