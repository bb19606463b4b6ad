"""Input standardization fitted on train, applied to test: equal to sklearn's StandardScaler."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from jdl.data import standardize


def test_fit_and_apply_equal_sklearn():
    rng = np.random.default_rng(0)
    x_train = rng.normal(size=(50, 4)) * [1.0, 5.0, 0.1, 2.0] + [0.0, 10.0, -3.0, 1.0]
    x_train[:, 3] = 7.0  # a constant feature: σ = 1, as sklearn
    x_test = rng.normal(size=(20, 4))
    mean, std = standardize.fit(x_train)
    scaler = StandardScaler().fit(x_train)
    np.testing.assert_allclose(mean, scaler.mean_, rtol=1e-12)
    np.testing.assert_allclose(std, scaler.scale_, rtol=1e-12)
    np.testing.assert_allclose(standardize.apply(x_test, mean, std), scaler.transform(x_test), rtol=1e-12)
    np.testing.assert_allclose(standardize.invert(standardize.apply(x_test, mean, std), mean, std), x_test, rtol=1e-12)
    z = jax.jit(standardize.apply)(jnp.asarray(x_test, jnp.float32), jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32))
    np.testing.assert_allclose(z, scaler.transform(x_test), rtol=1e-5, atol=1e-5)


def test_per_channel_images_and_errors():
    rng = np.random.default_rng(1)
    x = (rng.uniform(size=(6, 3, 3, 2)) * [1.0, 4.0]).astype(np.float32)
    mean, std = standardize.fit(x, axis=(0, 1, 2))
    assert mean.shape == std.shape == (1, 1, 2) and mean.dtype == np.float32
    flat = StandardScaler().fit(x.reshape(-1, 2).astype(np.float64))
    np.testing.assert_allclose(mean.ravel(), flat.mean_, rtol=1e-6)
    np.testing.assert_allclose(std.ravel(), flat.scale_, rtol=1e-6)
    with pytest.raises(ValueError, match="standardize.fit: axis must include 0"):
        standardize.fit(x, axis=(1, 2))
    with pytest.raises(ValueError, match="standardize.apply: mean"):
        standardize.apply(x, mean, std[0])
