import jax
import jax.numpy as jnp
import numpy as np

import jdl
from jdl import models
from jdl.nn import conv2d, conv_params, max_pool
from tests.models.shapes import count, numpy_init
from tests.helpers import draw_normal


def test_inception_3a_params_and_channels():
    """GoogLeNet's inception (3a) on 28x28x192: 64 + 128 + 32 + 32 = 256 channels."""
    n, y = count(models.inception_block(64, 96, 128, 16, 32, 32), (1, 28, 28, 192))
    assert y == (1, 28, 28, 256)
    assert n == (conv_params(1, 192, 64) + conv_params(1, 192, 96) + conv_params(3, 96, 128)
                 + conv_params(1, 192, 16) + conv_params(5, 16, 32) + conv_params(1, 192, 32)) == 163_696


def test_inception_block_equals_its_branches(key):
    x = draw_normal(key, (2, 6, 6, 5))
    block = models.inception_block(2, 3, 4, 2, 3, 1)
    params, state = numpy_init(block, x.shape)
    y, _ = block.apply(params, state, x)
    p = params["0_parallel"]
    c = lambda q, x: conv2d(x, q["w"], q["b"], padding="SAME")
    relu = jax.nn.relu
    b1 = relu(c(p["0_serial"]["0_conv2d"], x))
    b2 = relu(c(p["1_serial"]["2_conv2d"], relu(c(p["1_serial"]["0_conv2d"], x))))
    b3 = relu(c(p["2_serial"]["2_conv2d"], relu(c(p["2_serial"]["0_conv2d"], x))))
    b4 = relu(c(p["3_serial"]["1_conv2d"], max_pool(x, 3, 1, "SAME")))
    np.testing.assert_allclose(y, jnp.concatenate([b1, b2, b3, b4], -1), rtol=1e-5, atol=1e-6)


def test_googlenet_small_forward(key):
    model = models.googlenet_small(10, width=8)
    x = draw_normal(key, (2, 8, 8, 1))
    params, state = numpy_init(model, x.shape)
    y, _ = jax.jit(model.apply)(params, state, x)
    assert y.shape == (2, 10) and bool(jnp.all(jnp.isfinite(y)))
    assert count(models.googlenet_small(), (1, 32, 32, 3))[1] == (1, 10)
