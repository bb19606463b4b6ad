import jax
import jax.numpy as jnp
import pytest

import jdl
from jdl import models
from jdl.nn import conv_params, dense_params

from tests.models.shapes import S, count, numpy_init
from tests.helpers import draw_normal


def test_lenet5_default_takes_28x28_and_has_61706_params():
    n, y = count(models.lenet5(), (2, 28, 28, 1))
    expected = (conv_params(5, 1, 6) + conv_params(5, 6, 16) + dense_params(5 * 5 * 16, 120)
                + dense_params(120, 84) + dense_params(84, 10))
    assert n == expected == 61_706 and y == (2, 10)
    # the paper's 32x32 input needs no padding and gives the same network
    assert count(models.lenet5(input_shape=(32, 32, 1)), (1, 32, 32, 1))[0] == 61_706
    assert count(models.lenet5(3, input_shape=(8, 8, 1)), (5, 8, 8, 1))[1] == (5, 3)


def test_lenet5_forward_and_layer_shapes(key):
    model = models.lenet5()
    x = draw_normal(key, (2, 28, 28, 1))
    params, state = numpy_init(model, x.shape)
    table = jdl.summary(model, x)
    for shape in ["(2, 28, 28, 6)", "(2, 14, 14, 6)", "(2, 10, 10, 16)", "(2, 5, 5, 16)", "(2, 400)", "(2, 84)"]:
        assert shape in table
    y, _ = jax.jit(model.apply)(params, state, x)
    assert y.shape == (2, 10) and bool(jnp.all(jnp.isfinite(y)))


def summary_rows(model, shape):
    """{layer path: (output shape text, params)} parsed from jdl.summary's table."""
    rows = {}
    for line in jdl.summary(model, S(shape, jnp.float32)).splitlines()[2:-2]:
        name, rest = line.split(None, 1)
        shape_text, numbers = rest.rsplit(")", 1)
        rows[name] = (shape_text + ")", int(numbers.split()[0].replace(",", "")))
    return rows


def test_course_cnn_worked_example_layer_by_layer():
    """32x32x3 -> CONV3-8 (224) -> LeakyReLU -> POOL-2 -> BatchNorm (16) -> CONV3-16 (1,168)
    -> LeakyReLU -> POOL-2 -> Flatten (1,024) -> FC-10 (10,250), as jdl.summary prints it."""
    norm = pytest.importorskip("jdl.nn.norm")
    rows = list(summary_rows(models.cnn(10, (32, 32, 3), (8, 16), norm=norm.BatchNorm), (1, 32, 32, 3)).values())
    assert rows == [
        ("(1, 32, 32, 8)", 224), ("(1, 32, 32, 8)", 0), ("(1, 16, 16, 8)", 0), ("(1, 16, 16, 8)", 16),
        ("(1, 16, 16, 16)", 1_168), ("(1, 16, 16, 16)", 0), ("(1, 8, 8, 16)", 0), ("(1, 1024)", 0),
        ("(1, 10)", 10_250)]


def test_vgg16_has_138m_params():
    n, y = count(models.vgg("vgg16", 1000, fc=(4096, 4096)), (1, 224, 224, 3))
    assert n == 138_357_544 and y == (1, 1000)
    assert count(models.vgg(), (3, 8, 8, 1))[1] == (3, 10)


def test_cnn1d_mnist1d_shapes():
    n, y = count(models.cnn1d(), (4, 40))
    # 40 -> 19 -> 9 -> 4 with kernel 5, stride 2, padding 1
    expected = conv_params((5,), 1, 25) + 2 * conv_params((5,), 25, 25) + dense_params(4 * 25, 10)
    assert n == expected and y == (4, 10)
    assert count(models.cnn1d(), (4, 40, 1)) == (n, y)


def test_bad_model_arguments():
    with pytest.raises(ValueError, match=r"lenet5: input_shape must be \(H, W, C\)"):
        models.lenet5(input_shape=(28, 28))
    with pytest.raises(ValueError, match="vgg: unknown config 'vgg7'"):
        models.vgg("vgg7")
