"""``jdl.init.draw``: slicing a flat draw of a bucket size gives jax.random's own draw at the
requested shape, bit for bit (the reference is jax.random called directly), eagerly and jitted."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl import init

SHAPES = [(5,), (3, 3, 16, 32), (784, 512), (4096,), (4097,), (0, 3)]
SAMPLERS = [
    (jax.random.normal, ()),
    (jax.random.uniform, (-0.3, 0.3)),
    (jax.random.truncated_normal, (-2.0, 2.0)),
]


def direct(sampler, key, shape, dtype, bounds):
    if sampler is jax.random.truncated_normal:
        return sampler(key, *bounds, shape, dtype)
    return sampler(key, shape, dtype, *bounds)


def test_the_fast_path_is_on():
    assert jax.config.jax_threefry_partitionable  # else draw falls back and the tests below prove less


@pytest.mark.parametrize("sampler,bounds", SAMPLERS, ids=["normal", "uniform", "truncated_normal"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_draw_equals_jax_random_bit_for_bit(sampler, bounds, shape):
    key = jax.random.fold_in(jax.random.key(7), len(shape))
    got = init.draw(sampler, key, shape, jnp.float32, *bounds)
    want = direct(sampler, key, shape, jnp.float32, bounds)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(np.asarray(got).view(np.uint32), np.asarray(want).view(np.uint32))


def test_draw_in_bfloat16_and_with_a_raw_key():
    key = jax.random.PRNGKey(3)
    got = init.draw(jax.random.normal, key, (40, 30), jnp.bfloat16)
    want = jax.random.normal(key, (40, 30), jnp.bfloat16)
    assert got.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(got).view(np.uint16), np.asarray(want).view(np.uint16))


def test_draw_inside_jit_and_above_the_largest_size():
    key = jax.random.key(1)
    jitted = jax.jit(lambda k: init.draw(jax.random.normal, k, (6, 7), jnp.float32))(key)
    np.testing.assert_array_equal(jitted, jax.random.normal(key, (6, 7)))
    big = (init.DRAW_SIZES[-1] + 1,)
    np.testing.assert_array_equal(init.draw(jax.random.uniform, key, big, jnp.float32, 0.0, 1.0),
                                  jax.random.uniform(key, big))


def test_he_normal_keeps_its_values():
    key = jax.random.key(0)
    want = jnp.sqrt(2.0 / 144) * jax.random.normal(key, (3, 3, 16, 32))
    np.testing.assert_array_equal(init.he_normal(key, (3, 3, 16, 32)), want)
