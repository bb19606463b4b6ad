"""repeat(..., unroll=k) computes what repeat(...) does (lax.scan's unroll only changes the code)."""

import jax
import jax.numpy as jnp

import jdl
from tests.helpers import assert_close, draw_normal


def test_unrolled_repeat_equals_rolled():
    block = jdl.nn.serial(jdl.nn.Dense(5), jnp.tanh)
    x = draw_normal(jax.random.key(1), (3, 5))
    rolled, unrolled = jdl.nn.repeat(block, 4), jdl.nn.repeat(block, 4, unroll=2)
    params, state = rolled.init(jax.random.key(0), x)
    loss = lambda m: lambda p: jnp.sum(m.apply(p, state, x)[0] ** 2)
    assert_close(unrolled.apply(params, state, x)[0], rolled.apply(params, state, x)[0])
    assert_close(jax.grad(loss(unrolled))(params), jax.grad(loss(rolled))(params))
    serial = jdl.nn.serial(*[block] * 4)
    unstacked = {f"{i}_serial": jax.tree.map(lambda a: a[i], params) for i in range(4)}
    assert_close(unrolled.apply(params, state, x)[0], serial.apply(unstacked, {}, x)[0])
