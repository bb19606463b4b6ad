import jax
import jax.numpy as jnp

import jdl
from jdl.nn import (
    Conv2D, conv_output_size, conv_output_size_total, conv_params,
    dense_params, receptive_field, same_padding,
)


def test_the_two_output_size_conventions():
    # the quiz: 3x3 kernel, stride 2, total padding 2 (the d2l form) on 9x13 -> 5x7
    assert (conv_output_size_total(9, 3, 2, 2), conv_output_size_total(13, 3, 2, 2)) == (5, 7)
    # the same layer in the per-side form: p = 1 on each side
    assert (conv_output_size(9, 3, 2, 1), conv_output_size(13, 3, 2, 1)) == (5, 7)
    for n in range(5, 20):
        for k in (1, 2, 3, 5):
            for s in (1, 2, 3):
                for p in range(3):
                    assert conv_output_size(n, k, s, p) == conv_output_size_total(n, k, s, 2 * p)
    # and XLA agrees with the formula
    for n, k, s, p in [(7, 3, 2, 1), (14, 5, 3, 2), (9, 2, 1, 0)]:
        y = jax.eval_shape(lambda x: jdl.nn.conv2d(x, jnp.zeros((k, k, 1, 1)), stride=s, padding=p),
                           jax.ShapeDtypeStruct((1, n, n, 1), jnp.float32))
        assert y.shape[1] == conv_output_size(n, k, s, p)


def test_same_padding_keeps_size():
    assert same_padding(32, 3) == (1, 1) and same_padding(28, 5) == (2, 2)
    for n, k, s, d in [(9, 3, 1, 1), (10, 4, 1, 1), (11, 3, 2, 1), (8, 3, 1, 2), (13, 5, 3, 1)]:
        lo, hi = same_padding(n, k, s, d)
        y = jdl.nn.conv2d(jnp.zeros((1, n, n, 1)), jnp.zeros((k, k, 1, 1)), stride=s, padding="SAME", dilation=d)
        assert y.shape[1] == -(-n // s) == (n + lo + hi - d * (k - 1) - 1) // s + 1


def test_receptive_field_by_probing_the_gradient():
    # the receptive field is the support of d y[center] / d x for a stack of convolutions
    layers = [(3, 1), (3, 2), (5, 1, 2)]
    r = receptive_field(layers)
    assert r == 1 + 2 + 2 + 4 * 2 * 1 * 2

    def net(x):
        for k, s, *d in layers:
            x = jdl.nn.conv2d(x, jnp.ones((k, k, 1, 1)), stride=s, padding="SAME", dilation=d[0] if d else 1)
        return x

    x = jnp.zeros((1, 41, 41, 1))
    g = jax.grad(lambda x: net(x)[0, 5, 5, 0])(x)[0, :, :, 0]
    rows = jnp.nonzero(jnp.any(g != 0, axis=1))[0]
    assert int(rows[-1] - rows[0] + 1) == r


def test_param_counts_match_initialized_layers(key):
    assert conv_params(11, 3, 96) == 34_944
    assert conv_params(3, 3, 8) == 224 and conv_params(3, 8, 16) == 1_168 and dense_params(1024, 10) == 10_250
    for k, ci, co, g, bias in [(3, 4, 6, 2, True), ((1, 5), 3, 7, 1, False), (5, 8, 8, 8, True)]:
        params, _ = jax.eval_shape(Conv2D(co, k, groups=g, use_bias=bias).init, key,
                                   jax.ShapeDtypeStruct((1, 9, 9, ci), jnp.float32))
        assert jdl.param_count(params) == conv_params(k, ci, co, bias, g)
