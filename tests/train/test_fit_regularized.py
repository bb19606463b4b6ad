"""fit with BatchNorm, dropout, a penalty and augmentation: early stopping restores the best
epoch's params AND BatchNorm statistics."""

import jax
import numpy as np

import jdl
from jdl.data import augment
from jdl.losses import softmax_cross_entropy
from jdl.train import fit


def test_early_stopping_restores_batchnorm_state():
    data, val = jdl.data.load("moons", "train"), jdl.data.load("moons", "validation")
    seen = []
    result = fit(jdl.models.mlp([16, 2], norm="batch", dropout=0.1), softmax_cross_entropy, jdl.optim.sgd(2.0),
                 data, val, epochs=25, batch_size=100, early_stopping_patience=2, progress=False,
                 penalty=jdl.regularizers.penalty(l2_coef=1e-4), augment=augment.batched(augment.gaussian_noise(0.01)),
                 callbacks=[lambda e, r, ts: seen.append(jax.tree.map(np.array, (ts.params, ts.state)))])
    losses = [h["validation_loss"] for h in result.history]
    best = int(np.argmin(losses))
    assert len(losses) - 1 - best == 2  # stopped after 2 epochs without improvement
    params, state = seen[best]
    jax.tree.map(np.testing.assert_array_equal, result.train_state.params, params)
    jax.tree.map(np.testing.assert_array_equal, result.train_state.state, state)
    assert not np.allclose(state["2_batchnorm"]["mean"], seen[-1][1]["2_batchnorm"]["mean"])
