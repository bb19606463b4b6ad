"""Test helpers shared across the suite."""

import jax
import numpy as np


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
