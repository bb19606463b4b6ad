"""Shared fixtures for the optimizer tests: pytrees of params and 100 steps of random gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

STEPS = 100


def _trees():
    rng = np.random.default_rng(0)
    dense = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=(2,))}
    nested = {"0_dense": {"w": rng.normal(size=(4, 3, 2)), "b": rng.normal(size=(2,))},
              "scale": [rng.normal(size=()), rng.normal(size=(5,))]}
    return {"dense": dense, "nested": nested}


TREES = _trees()


def params_and_grads(name, steps=STEPS, seed=1):
    """(params, grads) with grads stacked along a leading axis of ``steps``, all float32."""
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), TREES[name])
    rng = np.random.default_rng(seed)
    grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=(steps, *p.shape)), jnp.float32), params)
    return params, grads


def run_steps(opt, params, grads, apply=None):
    """Run ``opt`` over the stacked ``grads`` under one jit + lax.scan; returns the final params."""
    from jdl import optim

    apply = apply or optim.apply_updates

    def body(carry, g):
        p, s = carry
        u, s = opt.update(g, s, p)
        return (apply(p, u), s), None

    @jax.jit
    def go(params, grads):
        (p, _), _ = jax.lax.scan(body, (params, opt.init(params)), grads)
        return p

    return go(params, grads)


@pytest.fixture(params=sorted(TREES))
def tree(request):
    return params_and_grads(request.param)
