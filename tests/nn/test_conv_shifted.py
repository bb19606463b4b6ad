"""shifted_conv2d (the CPU fast path of conv2d for C_in ≤ 3) equals lax.conv_general_dilated
in value and gradients, under jit and vmap, and is chosen only where it applies."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.nn.conv import conv2d
from jdl.nn.conv_shifted import shifted_conv2d, use_shifted
from tests.helpers import assert_close


def lax_conv(x, w, pads):
    return jax.lax.conv_general_dilated(x, w, (1, 1), pads, dimension_numbers=("NHWC", "HWIO", "NHWC"))


@pytest.mark.parametrize("c_in, kernel, pads", [(1, (5, 5), ((2, 2), (2, 2))), (3, (3, 2), ((0, 0), (0, 0))),
                                                (2, (3, 3), ((1, 0), (0, 2)))])
def test_value_and_gradients_equal_lax(c_in, kernel, pads):
    x = jax.random.normal(jax.random.key(0), (2, 7, 6, c_in))
    w = jax.random.normal(jax.random.key(1), (*kernel, c_in, 4))
    y = jax.jit(shifted_conv2d, static_argnums=2)(x, w, pads)
    np.testing.assert_allclose(y, lax_conv(x, w, pads), rtol=1e-5, atol=1e-5)
    # by definition, for one output: y[0, i, j, o] = Σ x_pad[0, i + a, j + b, c] w[a, b, c, o]
    xp = np.pad(np.asarray(x), ((0, 0), *pads, (0, 0)))
    ref = np.einsum("abc,abco->o", xp[0, 1:1 + kernel[0], 2:2 + kernel[1]], np.asarray(w))
    np.testing.assert_allclose(y[0, 1, 2], ref, rtol=1e-5, atol=1e-5)
    g = jax.random.normal(jax.random.key(2), y.shape)
    ours = jax.grad(lambda x, w: jnp.sum(jnp.tanh(shifted_conv2d(x, w, pads)) * g), (0, 1))(x, w)
    theirs = jax.grad(lambda x, w: jnp.sum(jnp.tanh(lax_conv(x, w, pads)) * g), (0, 1))(x, w)
    assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    batched = jax.vmap(lambda x: shifted_conv2d(x, w, pads))(x[:, None])
    np.testing.assert_allclose(batched[:, 0], y, rtol=1e-5, atol=1e-5)


def test_used_only_where_it_pays_and_conv2d_unchanged():
    assert use_shifted((5, 5, 1, 6), (1, 1), (1, 1), 1)
    assert not use_shifted((5, 5, 6, 16), (1, 1), (1, 1), 1)  # C_in = 6: lax is faster
    assert not use_shifted((3, 3, 1, 6), (2, 2), (1, 1), 1)  # strided
    assert not use_shifted((3, 3, 2, 6), (1, 1), (1, 1), 2)  # grouped
    assert not use_shifted((5, 5, 1, 6), (1, 1), (1, 1), 1, jnp.bfloat16)  # scalar bf16 code on CPU
    x = jax.random.normal(jax.random.key(3), (2, 8, 8, 1))
    w = jax.random.normal(jax.random.key(4), (5, 5, 1, 3))
    np.testing.assert_allclose(conv2d(x, w, padding="SAME"), lax_conv(x, w, ((2, 2), (2, 2))), rtol=1e-5, atol=1e-5)


def test_forward_mode_matches_lax():
    x = jax.random.normal(jax.random.key(5), (2, 6, 6, 1))
    w = jax.random.normal(jax.random.key(6), (3, 3, 1, 2))
    dx, dw = jnp.ones_like(x), jax.random.normal(jax.random.key(7), w.shape)
    pads = ((1, 1), (1, 1))
    ours = jax.jvp(lambda x, w: shifted_conv2d(x, w, pads), (x, w), (dx, dw))
    theirs = jax.jvp(lambda x, w: lax_conv(x, w, pads), (x, w), (dx, dw))
    assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
