"""The self-supervised loss functions (SimCLR, rotation prediction), the pretraining loop and the
frozen-feature encoder, checked against the same quantities computed directly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl import contrastive, losses, optim
from jdl.data import augment as A
from jdl.data.batching import epoch_order
from jdl.nn import Dense, Flatten, serial
from jdl.train import init_train_state, make_step
from jdl.train import selfsupervised as ssl

X = jnp.asarray(np.random.default_rng(0).uniform(size=(6, 4, 4, 1)), jnp.float32)
MODEL = serial(Flatten(), Dense(5))
PARAMS, STATE = MODEL.init(jax.random.key(1), X)
KEY = jax.random.key(2)


def test_simclr_is_nt_xent_of_the_two_views():
    noise = A.batched(A.gaussian_noise(0.1))

    @jax.jit
    def both(params, state, x, key):  # simclr's loss, and the same recomputed by hand
        loss, (_, m) = ssl.simclr(MODEL, noise, temperature=0.3)(params, state, x, key)
        k1, k2, _ = jax.random.split(key, 3)  # the views simclr draws
        z1, z2 = (MODEL.apply(params, state, noise(k, x))[0] for k in (k1, k2))
        same, _ = ssl.simclr(MODEL, lambda k, x: x, 0.3)(params, state, x, key)  # no augmentation
        z = MODEL.apply(params, state, x)[0]
        return (loss, m["positive_accuracy"], same), (contrastive.nt_xent(z1, z2, 0.3),
                                                      contrastive.positive_pair_accuracy(z1, z2),
                                                      contrastive.nt_xent(z, z, 0.3)), z1 - z2

    got, expected, diff = both(PARAMS, STATE, X, KEY)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert np.abs(diff).max() > 1e-3  # independent draws of the augmentation


def test_rotations_turn_like_rot90_and_label_the_turn():
    turned, labels = ssl.rotations(X)
    assert turned.shape == (24, 4, 4, 1) and labels.tolist() == [k for k in range(4) for _ in range(6)]
    for k in range(4):
        np.testing.assert_array_equal(turned[6 * k:6 * (k + 1)], np.rot90(np.asarray(X), k, axes=(1, 2)))
    with pytest.raises(ValueError, match=r"rotations: expected square images \(B, H, W, C\) with H = W"):
        ssl.rotations(jnp.zeros((2, 4, 5, 1)))


def test_rotation_prediction_is_cross_entropy_on_the_turns():
    model = serial(Flatten(), Dense(4))
    params, state = model.init(jax.random.key(3), X)
    loss, (_, m) = jax.jit(ssl.rotation_prediction(model))(params, state, X, KEY)
    turned, labels = ssl.rotations(X)
    logits = model.apply(params, state, turned)[0]
    np.testing.assert_allclose(loss, losses.softmax_cross_entropy(logits, labels), rtol=1e-6)
    np.testing.assert_allclose(m["accuracy"], np.mean(np.argmax(logits, 1) == np.asarray(labels)), rtol=1e-6)


def test_pretrain_visits_each_epoch_in_the_seeded_order():
    x = np.arange(10, dtype=np.float32)[:, None]

    def step(ts, xb):  # records the batch's first example and counts steps in ts
        return ts + 1, {"first": xb[0, 0]}

    ts, history = ssl.pretrain(step, 0, x, epochs=2, batch_size=3, seed=5)
    assert ts == 6 and [h["epoch"] for h in history] == [1, 2]  # 3 full batches an epoch
    for e, h in enumerate(history):
        order = epoch_order(10, 5, e)
        np.testing.assert_allclose(h["train_first"], np.mean([order[0], order[3], order[6]]))
    with pytest.raises(ValueError, match="pretrain: batch_size must lie in"):
        ssl.pretrain(step, 0, x, 1, 11)


def test_pretrain_lowers_the_simclr_loss():
    opt = optim.adam(1e-2)
    ts = init_train_state(MODEL, opt, X, seed=0)
    step = make_step(ssl.simclr(MODEL, A.batched(A.gaussian_noise(0.05)), 0.5), opt)
    _, history = ssl.pretrain(step, ts, np.asarray(X), epochs=30, batch_size=6)
    assert history[-1]["train_loss"] < history[0]["train_loss"] - 0.3
    assert history[-1]["train_positive_accuracy"] == 1.0  # 6 noisy pairs are told apart


def test_encode_equals_apply_on_the_whole_set():
    got = ssl.encode(MODEL, PARAMS, STATE, np.asarray(X), batch_size=4)  # 4 + 2 (padded)
    np.testing.assert_allclose(got, MODEL.apply(PARAMS, STATE, X)[0], rtol=1e-6)
