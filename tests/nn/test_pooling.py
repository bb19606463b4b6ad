import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl.nn import AvgPool1D, AvgPool2D, GlobalAvgPool, MaxPool1D, MaxPool2D, avg_pool, max_pool
from tests.helpers import assert_init_shapes

CASES = [((2, 2), None, "VALID"), ((3, 3), (2, 2), "VALID"), ((3, 3), (1, 1), "SAME"), ((2, 3), (2, 1), "VALID"),
         ((3, 3), (2, 2), ((1, 1), (1, 1)))]


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).normal(size=(2, 7, 8, 3)).astype(np.float32)


@pytest.mark.parametrize("window, stride, padding", CASES)
def test_pooling_equals_flax(x, window, stride, padding):
    strides = window if stride is None else stride
    np.testing.assert_allclose(max_pool(x, window, stride, padding),
                               fnn.max_pool(x, window, strides, padding), rtol=1e-6)
    np.testing.assert_allclose(avg_pool(x, window, stride, padding),
                               fnn.avg_pool(x, window, strides, padding), rtol=1e-5, atol=1e-6)


@pytest.mark.torch
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_pooling_equals_torch(x, count_include_pad):
    torch = pytest.importorskip("torch")
    xt = torch.tensor(x.transpose(0, 3, 1, 2))  # NHWC -> NCHW
    to_nhwc = lambda t: t.numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(max_pool(x, 3, 2, 1), to_nhwc(torch.nn.functional.max_pool2d(xt, 3, 2, 1)), rtol=1e-6)
    ref = torch.nn.functional.avg_pool2d(xt, 3, 2, 1, count_include_pad=count_include_pad)
    np.testing.assert_allclose(avg_pool(x, 3, 2, 1, count_include_pad), to_nhwc(ref), rtol=1e-5, atol=1e-6)
    x1 = x[:, 0]  # (B, L, C)
    ref1 = torch.nn.functional.max_pool1d(torch.tensor(x1.transpose(0, 2, 1)), 2)
    np.testing.assert_allclose(MaxPool1D(2).apply({}, {}, x1)[0], ref1.numpy().transpose(0, 2, 1), rtol=1e-6)


def test_course_pooling_example():
    x = jnp.arange(9.0).reshape(1, 3, 3, 1)
    assert max_pool(x, 2, 1)[0, :, :, 0].tolist() == [[4, 5], [7, 8]]  # max(0, 1, 3, 4) = 4
    assert avg_pool(x, 2, 1)[0, :, :, 0].tolist() == [[2, 3], [5, 6]]


def test_pool_modules(x, key):
    for layer, shape in [(MaxPool2D(2), (2, 3, 4, 3)), (AvgPool2D(3, 1, "SAME"), (2, 7, 8, 3)),
                         (GlobalAvgPool(), (2, 3))]:
        params, state, y = assert_init_shapes(layer, x, key)
        assert params == {} and state == {} and y.shape == shape
    np.testing.assert_allclose(GlobalAvgPool().apply({}, {}, x)[0], x.mean(axis=(1, 2)), rtol=1e-5)
    _, _, y1 = assert_init_shapes(AvgPool1D(4), x[:, 0], key)
    np.testing.assert_allclose(y1, x[:, 0].reshape(2, 2, 4, 3).mean(2), rtol=1e-5)


def test_max_pool_gradient_goes_to_the_max():
    x = jnp.array([[1.0, 5.0], [3.0, 2.0]]).reshape(1, 2, 2, 1)
    g = jax.grad(lambda x: jnp.sum(max_pool(x, 2)))(x)
    assert g[0, :, :, 0].tolist() == [[0, 1], [0, 0]]
    with jax.enable_x64(True):
        xs = jnp.asarray(np.random.default_rng(1).normal(size=(1, 4, 4, 2)))
        errors = jdl.autodiff.check_grads(lambda x: jnp.sum(jnp.sin(avg_pool(x, 3, 1, "SAME", False))), xs)
    assert max(errors.values()) < 1e-7


def test_pool_bad_input(key):
    with pytest.raises(ValueError, match=r"MaxPool2D: expected an input of rank 4 \(B, H, W, C\)"):
        MaxPool2D(2).init(key, jnp.ones((4, 4, 1)))
    with pytest.raises(ValueError, match="max_pool: kernel larger than the padded input: input 2, kernel 3"):
        max_pool(jnp.ones((1, 2, 2, 1)), 3)
    with pytest.raises(ValueError, match="MaxPool2D: window must be at least 1"):
        MaxPool2D(0)
