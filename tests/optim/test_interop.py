"""jdl and optax optimizers swap in one line: jdl updates go through optax.apply_updates, optax
transforms chain with jdl's, and an optax optimizer trains in jdl's fit exactly like jdl's twin."""

import jax
import numpy as np
import optax

import jdl
from jdl import optim
from jdl.losses import softmax_cross_entropy
from tests.helpers import assert_close
from tests.optim.conftest import params_and_grads, run_steps


def test_jdl_optimizer_with_optax_apply_updates():
    params, grads = params_and_grads("nested", steps=20)
    opt = optim.adamw(optim.warmup_cosine_decay_schedule(0.0, 0.1, 5, 20), weight_decay=0.1)
    assert_close(run_steps(opt, params, grads, apply=optax.apply_updates),
                 run_steps(opt, params, grads), rtol=1e-6, atol=1e-7)


def test_optax_and_jdl_transforms_chain_together():
    params, grads = params_and_grads("dense", steps=20)
    mixed = optim.chain(optax.clip_by_global_norm(1.0), optim.scale_by_adam(), optax.scale(-0.01))
    assert_close(run_steps(mixed, params, grads),
                 run_steps(optax.chain(optax.clip_by_global_norm(1.0), optax.adam(0.01)), params, grads),
                 rtol=1e-6, atol=1e-7)


def test_optax_optimizer_in_fit_matches_jdl_twin():
    x, y = jdl.data.load("moons", "train")
    data = (x[:128], y[:128])
    runs = [jdl.train.fit(jdl.models.mlp([16, 2]), softmax_cross_entropy, opt, data, data, epochs=2,
                          batch_size=32, seed=1, progress=False)
            for opt in (optax.adam(1e-2), optim.adam(1e-2))]
    for a, b in zip(runs[0].history, runs[1].history):
        np.testing.assert_allclose([a["train_loss"], a["validation_loss"]], [b["train_loss"], b["validation_loss"]], rtol=1e-5)
    jax.tree.map(lambda p, q: np.testing.assert_allclose(p, q, rtol=1e-4, atol=1e-6),
                 runs[0].train_state.params, runs[1].train_state.params)


def test_every_state_can_be_donated():
    """No two state leaves share a buffer (a train step donates the whole state)."""
    from tests.optim.test_convergence import OPTIMIZERS

    params, _ = params_and_grads("nested", steps=1)
    for name, (opt, _) in OPTIMIZERS.items():
        jax.block_until_ready(jax.jit(lambda s: s, donate_argnums=0)(opt.init(params)))
