"""Bad input gets a ValueError naming the argument (or showing both tree structures)."""

import jax.numpy as jnp
import pytest

from jdl import optim
from jdl.optim import schedules

PARAMS = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}


@pytest.mark.parametrize("make, message", [
    (lambda: optim.adam(-1e-3), "adam: learning_rate must be a finite number >= 0"),
    (lambda: optim.rmsprop(float("nan")), "rmsprop: learning_rate must be"),
    (lambda: optim.sgd(0.1, momentum=1.0), r"trace: decay must be in \[0, 1\), got 1.0"),
    (lambda: optim.sgd(0.1, momentum=-0.5), r"trace: decay must be in \[0, 1\)"),
    (lambda: optim.sgd(0.1, nesterov=True), "nesterov=True needs a momentum"),
    (lambda: optim.scale_by_velocity(0.1, 1.5), r"scale_by_velocity: momentum must be in \[0, 1\)"),
    (lambda: optim.momentum_ema(0.1, beta=1.0), r"scale_by_ema: decay must be in \[0, 1\)"),
    (lambda: optim.adam(1e-3, b1=1.0), r"scale_by_adam: b1 must be in \[0, 1\)"),
    (lambda: optim.adam(1e-3, b2=-0.1), r"scale_by_adam: b2 must be in \[0, 1\)"),
    (lambda: optim.adam(1e-3, eps=0.0), "scale_by_adam: eps must be a finite number > 0, got 0.0"),
    (lambda: optim.adagrad(0.1, eps=-1e-7), "scale_by_rss: eps must be a finite number > 0"),
    (lambda: optim.rmsprop(0.1, eps=0.0), "scale_by_rms: eps must be a finite number > 0"),
    (lambda: optim.rmsprop(0.1, centered=True, eps=0.0), "scale_by_stddev: eps must be"),
    (lambda: optim.rmsprop(0.1, decay=1.2), r"scale_by_rms: decay must be in \[0, 1\)"),
    (lambda: optim.adamw(1e-3, weight_decay=-1.0), "add_decayed_weights: weight_decay must be a finite number >= 0"),
    (lambda: optim.clip_by_global_norm(0.0), "clip_by_global_norm: max_norm must be a finite number > 0"),
    (lambda: optim.clip(-1.0), "clip: max_delta must be"),
    (lambda: schedules.step_decay(0.1, 0), "exponential_decay: transition_steps must be a positive integer"),
    (lambda: schedules.step_decay(0.1, 10, factor=2.0), r"step_decay: factor must be in \(0, 1\]"),
    (lambda: schedules.join_schedules([schedules.constant_schedule(1.0)] * 2, []), "2 schedules need 1 boundaries"),
    (lambda: schedules.warmup_cosine_decay_schedule(0.0, 1.0, 10, 5), "decay_steps .5. must exceed warmup_steps .10."),
])
def test_bad_hyperparameters_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_gradient_tree_with_another_structure_shows_both():
    opt = optim.adam(1e-3)
    grads = {"w": jnp.ones((3, 2))}
    with pytest.raises(ValueError, match=r"(?s)structure differs from the params'.*grads: .*params: "):
        opt.update(grads, opt.init(PARAMS), PARAMS)
    with pytest.raises(ValueError, match=r"apply_updates: the gradient tree's structure differs"):
        optim.apply_updates(PARAMS, grads)
