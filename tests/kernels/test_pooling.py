"""jdl.kernels.pooling: the reshape max pool equals the plain definition (``jdl.nn.max_pool``,
one lax.reduce_window) in value, gradient and forward-mode derivative — ties included, where
both send a window's whole gradient to its first maximum — and the 'auto' rule picks it only
where the windows tile the input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.kernels.pooling import choose_pool_impl, fast_max_pool, tiled_max_pool
from jdl.nn import MaxPool1D, MaxPool2D, max_pool
from tests.helpers import draw_normal


def window_max(x, k):
    dims = (1, *k, 1)
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, dims, dims, "VALID")


def inputs():
    rng = np.random.default_rng(0)
    continuous = rng.normal(size=(2, 6, 8, 3)).astype(np.float32)
    ties = rng.integers(-1, 2, size=(2, 7, 6, 3)).astype(np.float32)  # 3 values: many tied maxima
    relu = np.maximum(continuous, 0.0)  # windows of zeros
    return {"continuous": continuous, "ties": ties, "relu": relu}


@pytest.mark.parametrize("name", ["continuous", "ties", "relu"])
@pytest.mark.parametrize("window", [(2, 2), (3, 2), (1, 3)])
def test_value_gradient_and_jvp_equal_reduce_window(name, window):
    x = jnp.asarray(inputs()[name])
    y = tiled_max_pool(x, window)
    np.testing.assert_array_equal(y, window_max(x, window))
    g = draw_normal(jax.random.key(1), y.shape)
    ours = jax.grad(lambda x: jnp.sum(tiled_max_pool(x, window) * g))(x)
    ref = jax.grad(lambda x: jnp.sum(window_max(x, window) * g))(x)
    np.testing.assert_array_equal(ours, ref)
    dx = draw_normal(jax.random.key(2), x.shape)
    np.testing.assert_array_equal(jax.jvp(lambda x: tiled_max_pool(x, window), (x,), (dx,))[1],
                                  jax.jvp(lambda x: window_max(x, window), (x,), (dx,))[1])


def test_tie_rule_first_maximum_in_row_major_order():
    x = jnp.array([[0.0, 3.0], [3.0, 3.0]]).reshape(1, 2, 2, 1)  # three tied maxima
    g = jax.grad(lambda x: jnp.sum(tiled_max_pool(x, (2, 2))))(x)
    assert g[0, :, :, 0].tolist() == [[0, 1], [0, 0]]  # all of it to (0, 1), as PyTorch does
    x1 = jnp.zeros((1, 6, 1))  # 1-D, all tied
    g1 = jax.jit(jax.grad(lambda x: jnp.sum(tiled_max_pool(x, (3,)))))(x1)
    assert g1[0, :, 0].tolist() == [1, 0, 0, 1, 0, 0]


def test_the_auto_rule_and_the_layers():
    tile = ((1, 2, 2, 1), (1, 2, 2, 1), ((0, 0),) * 4)
    assert choose_pool_impl(*tile, backend="cpu") == "tiled"
    assert choose_pool_impl(*tile, backend="gpu") == "xla"
    assert choose_pool_impl((1, 3, 3, 1), (1, 2, 2, 1), ((0, 0),) * 4, backend="cpu") == "xla"  # overlap
    assert choose_pool_impl((1, 2, 2, 1), (1, 2, 2, 1), ((0, 0), (1, 1), (1, 1), (0, 0)), backend="cpu") == "xla"
    x = jnp.asarray(inputs()["relu"])
    for impl in ("auto", "tiled"):
        f = lambda x: jnp.sum(jnp.sin(MaxPool2D(2, impl=impl).apply({}, {}, x)[0]))
        np.testing.assert_array_equal(jax.grad(f)(x), jax.grad(lambda x: jnp.sum(jnp.sin(max_pool(x, 2))))(x))
    np.testing.assert_array_equal(MaxPool2D(3, 1, "SAME", impl="auto").apply({}, {}, x)[0],
                                  max_pool(x, 3, 1, "SAME"))  # overlapping: reduce_window
    np.testing.assert_array_equal(MaxPool1D(2, impl="auto").apply({}, {}, x[:, 0])[0], max_pool(x[:, 0], 2))
    assert "reduce_window_max" in str(jax.make_jaxpr(lambda x: max_pool(x, 2))(x))  # the definition
    with pytest.raises(ValueError, match=r"MaxPool2D: impl='tiled' needs stride = window and no padding"):
        MaxPool2D(3, 1, impl="tiled").apply({}, {}, x)
    with pytest.raises(ValueError, match=r"MaxPool2D: impl must be one of .*got 'fast'"):
        MaxPool2D(2, impl="fast")
    with pytest.raises(ValueError, match="max_pool: impl must be one of"):
        fast_max_pool(x, 2, impl="reshape")
