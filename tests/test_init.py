import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl import init

SHAPE = (400, 300)


def test_fans():
    assert init.fans((4, 3)) == (4, 3)
    assert init.fans((3, 3, 16, 32)) == (144, 288)
    assert init.fans((5, 2, 7)) == (10, 35)


@pytest.mark.parametrize("fn, variance", [
    (init.xavier_uniform, 2 / (400 + 300)),
    (init.xavier_normal, 2 / (400 + 300)),
    (init.he_uniform, 2 / 400),
    (init.he_normal, 2 / 400),
    (init.lecun_normal, 1 / 400),
    (init.uniform(0.05), 0.05 ** 2 / 3),
    (init.normal(0.01), 0.01 ** 2),
])
def test_variances(fn, variance, key):
    w = np.asarray(fn(key, SHAPE, jnp.float32))
    assert w.shape == SHAPE and w.dtype == np.float32
    assert abs(w.mean()) < 0.02 * np.sqrt(variance) * 10
    np.testing.assert_allclose(w.var(), variance, rtol=0.03)


@pytest.mark.parametrize("ours, theirs", [
    (init.xavier_uniform, jax.nn.initializers.glorot_uniform()),
    (init.xavier_normal, jax.nn.initializers.glorot_normal()),
    (init.he_normal, jax.nn.initializers.he_normal()),
    (init.lecun_normal, jax.nn.initializers.lecun_normal()),
])
def test_conv_kernel_variance_matches_jax(ours, theirs, key):
    """Same variance as jax.nn.initializers on an HWIO kernel (fans include the window)."""
    shape = (3, 3, 32, 64)
    a = np.asarray(ours(key, shape)).var()
    b = np.asarray(theirs(jax.random.key(1), shape)).var()
    np.testing.assert_allclose(a, b, rtol=0.05)


def test_constant_zeros_uniform_bounds(key):
    np.testing.assert_array_equal(init.zeros(key, (2, 3)), 0)
    np.testing.assert_array_equal(init.constant(0.5)(key, (2,)), 0.5)
    w = init.he_uniform(key, (100, 50))
    assert float(jnp.max(jnp.abs(w))) <= np.sqrt(6 / 100)


def test_bad_mode():
    with pytest.raises(ValueError, match="mode must be fan_in, fan_out or fan_avg"):
        init.variance_scaling(1.0, "fan_x", "normal")


@pytest.mark.parametrize("shape", [(6, 6), (8, 3), (3, 8), (2, 3, 5)])
def test_orthogonal_has_orthonormal_rows_or_columns(shape):
    w = np.asarray(init.orthogonal(2.0)(jax.random.key(0), shape), np.float64).reshape(-1, shape[-1])
    gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T      # QᵀQ or QQᵀ
    np.testing.assert_allclose(gram, 4.0 * np.eye(min(w.shape)), atol=1e-5)
    other = np.asarray(init.orthogonal()(jax.random.key(1), shape))
    assert not np.allclose(other.reshape(w.shape), w / 2)
    with pytest.raises(ValueError, match="orthogonal: needs a kernel of at least 2 dimensions"):
        init.orthogonal()(jax.random.key(0), (4,))
