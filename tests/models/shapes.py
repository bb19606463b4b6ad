"""Cheap model checks for the CNN tests: shapes and counts by eval_shape, params from numpy.

Real ``init`` compiles one truncated-normal sampler per parameter shape (about a second each on
a loaded CPU); tests that only need *some* weights draw them with numpy instead."""

import jax
import jax.numpy as jnp
import numpy as np

import jdl

S = jax.ShapeDtypeStruct


def count(model, shape):
    """Parameter count and output shape, by eval_shape only (no FLOPs, no memory)."""
    params, state = jax.eval_shape(model.init, jax.random.key(0), S(shape, jnp.float32))
    y = jax.eval_shape(lambda p, s: model.apply(p, s, jnp.zeros(shape))[0], params, state)
    return jdl.param_count(params), y.shape


def numpy_init(model, shape, seed=0, scale=0.3):
    """(params, state) with the shapes ``model.init`` gives, weights ~ N(0, scale²) from numpy,
    state as init would make it (computed by init only when the model has state)."""
    rng = np.random.default_rng(seed)
    p_struct, s_struct = jax.eval_shape(model.init, jax.random.key(0), S(shape, jnp.float32))
    params = jax.tree.map(lambda s: jnp.asarray(scale * rng.normal(size=s.shape), s.dtype), p_struct)
    state = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), s_struct)
    return params, state
