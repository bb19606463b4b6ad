import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.nn import Dropout, dropout
from tests.helpers import draw_normal


def test_dropout_keeps_the_mean_over_many_keys():
    x = jnp.full((200, 50), 2.0)
    p = 0.3
    keys = jax.random.split(jax.random.key(0), 40)
    ys = jax.vmap(lambda k: dropout(k, x, p))(keys)  # 400,000 units
    kept = np.mean(np.asarray(ys) != 0)
    assert abs(kept - (1 - p)) < 4 * np.sqrt(p * (1 - p) / ys.size)  # within 4 standard errors
    np.testing.assert_allclose(float(ys.mean()), 2.0, rtol=5e-3)
    np.testing.assert_allclose(np.unique(np.asarray(ys)), [0.0, 2.0 / (1 - p)], rtol=1e-6)


def test_classic_dropout_keeps_the_train_test_mean():
    x = jnp.full((400, 100), 1.5)
    layer = Dropout(0.5, inverted=False)
    y_train, _ = layer.apply({}, {}, x, key=jax.random.key(1), train=True)
    y_test, _ = layer.apply({}, {}, x, train=False)
    assert set(np.unique(np.asarray(y_train))) == {0.0, 1.5}  # no scaling in training
    np.testing.assert_allclose(y_test, 0.75)  # × (1 − p) at test time
    np.testing.assert_allclose(float(y_train.mean()), float(y_test.mean()), rtol=1e-2)


def test_dropout_eval_identity_and_same_key_same_mask(key):
    x = draw_normal(key, (8, 16))
    layer = Dropout(0.5)
    y, state = layer.apply({}, {}, x, train=False)
    assert y is x and state == {}
    a, _ = layer.apply({}, {}, x, key=jax.random.key(3), train=True)
    b, _ = jax.jit(lambda k: layer.apply({}, {}, x, key=k, train=True))(jax.random.key(3))
    c, _ = layer.apply({}, {}, x, key=jax.random.key(4), train=True)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(dropout(key, x, 0.0), x)


def test_dropout_bad_input(key):
    for p in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"Dropout: the drop probability p must be a number in \[0, 1\)"):
            Dropout(p)
    with pytest.raises(ValueError, match=r"dropout: the drop probability"):
        dropout(key, jnp.ones(3), 1.0)
    with pytest.raises(ValueError, match="Dropout is stochastic and needs a random key"):
        Dropout(0.5).apply({}, {}, jnp.ones(3), train=True)


def test_spatial_dropout_equals_flax_and_drops_whole_channels(key):
    """Dropout(p, broadcast_dims=(1, 2)) on NHWC: flax's Dropout with the same key and dims gives
    the same output, and each (example, channel) map is either all kept or all zero."""
    import flax.linen as fnn

    x = draw_normal(jax.random.key(1), (4, 5, 6, 8)) + 3.0  # no exact zeros
    layer = Dropout(0.5, broadcast_dims=(1, 2))
    y, _ = layer.apply({}, {}, x, key=key, train=True)
    y_flax = fnn.Dropout(0.5, broadcast_dims=(1, 2), deterministic=False).apply({}, x, rng=key)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(y_flax))
    kept = np.asarray(y != 0)  # (B, H, W, C)
    assert (kept.all(axis=(1, 2)) | ~kept.any(axis=(1, 2))).all()
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(np.asarray(y)[kept], 2.0 * np.asarray(x)[kept], rtol=1e-6)
    y_neg, _ = Dropout(0.5, broadcast_dims=(-3, -2)).apply({}, {}, x, key=key, train=True)
    np.testing.assert_array_equal(np.asarray(y_neg), np.asarray(y))
    with pytest.raises(ValueError, match=r"broadcast_dims \(4,\).*\(4, 5, 6, 8\)"):
        Dropout(0.5, broadcast_dims=(4,)).apply({}, {}, x, key=key, train=True)
