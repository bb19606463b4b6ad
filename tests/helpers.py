"""Test helpers shared across the suite."""

import os

import jax
import numpy as np

from jdl.init import draw


def assert_close(a, b, rtol=1e-5, atol=1e-6):
    """Leaf-by-leaf numpy allclose over two pytrees."""
    jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol), a, b)


def assert_init_shapes(module, x, key=None):
    """init's params have the shapes jax.eval_shape predicts, and apply's output has the shape
    eval_shape predicts; returns (params, state, y)."""
    key = jax.random.key(0) if key is None else key
    params, state = module.init(key, x)
    p_struct, s_struct = jax.eval_shape(module.init, key, x)
    assert jax.tree.map(lambda a: a.shape, params) == jax.tree.map(lambda a: a.shape, p_struct)
    y, _ = module.apply(params, state, x)
    y_struct = jax.eval_shape(lambda p, s, x: module.apply(p, s, x)[0], params, state, x)
    assert jax.tree.map(lambda a: (a.shape, a.dtype), y) == jax.tree.map(lambda a: (a.shape, a.dtype), y_struct)
    return params, state, y


def draw_normal(key, shape=(), dtype=float):
    """``jax.random.normal(key, shape, dtype)`` bit for bit, without an XLA program compiled for
    each shape: ``jdl.init.draw`` slices it from a flat draw of one of three sizes (a sampler's
    compile costs ~0.4 s of CPU, most of a small test)."""
    return draw(jax.random.normal, key, tuple(shape), dtype)


def draw_uniform(key, shape=(), dtype=float, minval=0.0, maxval=1.0):
    """``jax.random.uniform(key, shape, dtype, minval, maxval)`` bit for bit, as draw_normal."""
    return draw(jax.random.uniform, key, tuple(shape), dtype, minval, maxval)


def devices_xla_flags(devices: int) -> str:
    """XLA_FLAGS for a subprocess with ``devices`` CPU devices: this process's flags (the user's and
    tests/conftest.py's compile level, so the subprocess compiles as fast as the tests do), then
    the device count."""
    own = os.environ.get("XLA_FLAGS", "")
    return f"{own} --xla_force_host_platform_device_count={devices}".strip()
