"""max_pool's reshape fast path (non-overlapping windows that tile the input) equals
lax.reduce_window in value and gradient, and is used only where it applies."""

import jax
import jax.numpy as jnp
import numpy as np

from jdl.nn.pooling import max_pool


def window_max(x, k):
    dims = (1, *k, 1)
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, dims, dims, "VALID")


def test_tiled_max_pool_equals_reduce_window_with_gradients():
    x = jax.random.normal(jax.random.key(0), (2, 6, 8, 3))  # continuous values: no ties
    g = jax.random.normal(jax.random.key(1), (2, 3, 4, 3))
    np.testing.assert_array_equal(max_pool(x, 2), window_max(x, (2, 2)))
    ours = jax.grad(lambda x: jnp.sum(max_pool(x, 2) * g))(x)
    ref = jax.grad(lambda x: jnp.sum(window_max(x, (2, 2)) * g))(x)
    np.testing.assert_allclose(ours, ref, rtol=1e-6)
    x1 = jax.random.normal(jax.random.key(2), (2, 9, 4))  # 1-D, window 3
    np.testing.assert_array_equal(max_pool(x1, 3), jax.lax.reduce_window(
        x1, -jnp.inf, jax.lax.max, (1, 3, 1), (1, 3, 1), "VALID"))
    x2 = jax.random.normal(jax.random.key(3), (1, 7, 6, 2))  # 7 % 2 ≠ 0: the last row is dropped
    np.testing.assert_array_equal(max_pool(x2, 2), window_max(x2, (2, 2)))
