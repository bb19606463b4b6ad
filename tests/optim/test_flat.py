"""``flatten(opt)``, the flat layout, takes the same 100 steps as optax's optimizer on the tree
(float32, relative error under 1e-6), inside ``make_step`` too, and refuses what one vector
cannot hold."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jdl
from jdl import optim
from jdl.losses import softmax_cross_entropy
from jdl.train import init_train_state, make_step, supervised
from tests.helpers import assert_close
from tests.optim.conftest import run_steps
from tests.optim.test_equal_optax import PAIRS

FLAT_CASES = ["sgd_momentum", "sgd_nesterov", "adagrad", "rmsprop_centered", "adam", "adamw",
              "clip_global_norm_adam"]


@pytest.mark.parametrize("name", FLAT_CASES)
def test_flat_layout_takes_optax_steps_on_the_tree(name, tree):
    params, grads = tree
    ours = run_steps(optim.flatten(PAIRS[name](optim, 0.05)), params, grads)
    theirs = run_steps(PAIRS[name](optax, 0.05), params, grads, apply=optax.apply_updates)
    assert_close(ours, theirs, rtol=1e-6, atol=1e-6)


def test_flat_state_is_one_vector_per_moment(tree):
    params, _ = tree
    n = sum(x.size for x in jax.tree.leaves(params))
    state = optim.flatten(optim.adam(1e-3)).init(params)
    adam_state = state.inner[0]
    assert adam_state.m.shape == (n,) and adam_state.v.shape == (n,)
    back = optim.flat.unravel(optim.flat.ravel(params), params)
    assert_close(back, params, rtol=0, atol=0)


def test_make_step_with_the_flat_layout_follows_optax():
    model = jdl.models.mlp([16, 3])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 5)).astype(np.float32), (np.arange(32) % 3).astype(np.int32)
    runs = []
    for opt in (optim.flatten(optim.adamw(1e-2, weight_decay=0.1)), optax.adamw(1e-2, weight_decay=0.1)):
        ts = init_train_state(model, opt, x)
        step = make_step(supervised(model, softmax_cross_entropy), opt)
        for _ in range(3):
            ts, _ = step(ts, (x, y))
        runs.append(ts.params)
    assert_close(runs[0], runs[1], rtol=1e-6, atol=1e-6)


def test_flat_refuses_none_leaves_and_mixed_dtypes():
    opt = optim.flatten(optim.sgd(0.1))
    params = {"w": jnp.ones(3), "b": jnp.ones(2)}
    state = opt.init(params)
    with pytest.raises(ValueError, match="flatten: the gradient tree has a None leaf"):
        opt.update({"w": jnp.ones(3), "b": None}, state, params)
    with pytest.raises(TypeError, match=r"flatten: all params leaves must share one dtype.*bfloat16.*float32"):
        opt.init({"w": jnp.ones(3), "b": jnp.ones(2, jnp.bfloat16)})
