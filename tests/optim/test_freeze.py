"""Freezing and differential learning rates by path pattern, step for step against optax's
masked(set_to_zero()) and multi_transform; path globs; frozen leaves bit-identical."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jdl import optim
from jdl.paths import glob_regex, leaf_paths, matches, path_mask
from tests.helpers import draw_normal

PARAMS = {
    "blocks": {"0_block": {"attn": {"q": {"w": jnp.ones((3, 3)), "b": jnp.zeros(3)}},
                           "ln": {"gamma": jnp.ones(3)}},
               "1_block": {"attn": {"q": {"w": jnp.ones((3, 3)) * 0.5, "b": jnp.zeros(3)}}}},
    "head": {"w": jnp.full((3, 2), 0.2, jnp.float32), "b": jnp.zeros(2)},  # not weak-typed
}


def grads_at(t):
    """A different gradient at each step, the same for both libraries."""
    leaves, tree = jax.tree.flatten(PARAMS)
    keys = jax.random.split(jax.random.key(t), len(leaves))
    return jax.tree.unflatten(tree, [draw_normal(k, x.shape) for k, x in zip(keys, leaves)])


def run(opt, apply_updates, steps=4):
    params, state = PARAMS, opt.init(PARAMS)
    for t in range(steps):
        u, state = opt.update(grads_at(t), state, params)
        params = apply_updates(params, u)
    return params


def assert_trees_close(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)


def test_globs():
    assert glob_regex("**/w").fullmatch("w") and glob_regex("**/w").fullmatch("a/b/w")
    assert matches("blocks/0_block/attn/q/w", "blocks/*/attn/**")
    assert not matches("blocks/0_block/attn/q/w", "blocks/*/q")  # * stays in one segment
    assert matches("blocks/0_block/attn/q/w", "blocks/0_block")  # an ancestor selects its leaves
    assert matches("blocks/1_block/attn/q/b", re.compile(r"blocks/\d_block/attn/q/b"))
    assert not matches("head/w", ["blocks/**", "w"])
    mask = jax.tree.leaves(path_mask(PARAMS, "**/b"))
    assert mask == [p.endswith("/b") for p in leaf_paths(PARAMS)]


@pytest.mark.parametrize("inner", ["sgd", "adamw"])
def test_freeze_equals_optax_masked_set_to_zero(inner):
    frozen = "blocks/0_block/**"
    mask = path_mask(PARAMS, frozen)
    make = {"sgd": lambda lib: lib.sgd(0.1, momentum=0.9),
            "adamw": lambda lib: lib.adamw(0.05, weight_decay=0.1)}[inner]
    mine = run(optim.frozen(make(optim), frozen), optim.apply_updates)
    ref = run(optax.chain(make(optax), optax.masked(optax.set_to_zero(), mask)), optax.apply_updates)
    assert_trees_close(mine, ref)
    for a, b in zip(jax.tree.leaves(mine["blocks"]["0_block"]), jax.tree.leaves(PARAMS["blocks"]["0_block"])):
        np.testing.assert_array_equal(a, b)  # bit-identical, weight decay included
    assert not np.allclose(mine["head"]["w"], PARAMS["head"]["w"])


def test_masked_equals_optax_masked():
    mask = optim.trainable_mask(PARAMS, ["head", "**/ln"])
    mine = run(optim.masked(optim.adam(0.1), mask), optim.apply_updates)
    ref = run(optax.masked(optax.adam(0.1), mask), optax.apply_updates)
    assert_trees_close(mine, ref)


def test_differential_lr_equals_optax_multi_transform():
    groups = {"head": "head/**", "frozen": "**/ln/**"}
    mine = optim.differential_lr({"head": optim.adam(1e-2), "body": optim.adam(1e-3),
                                  "frozen": optim.set_to_zero()}, groups, default="body")
    labels = optim.label_by_pattern(groups, default="body")(PARAMS)
    assert labels["blocks"]["0_block"]["ln"]["gamma"] == "frozen" and labels["head"]["w"] == "head"
    ref = optax.multi_transform({"head": optax.adam(1e-2), "body": optax.adam(1e-3),
                                 "frozen": optax.set_to_zero()}, labels)
    assert_trees_close(run(mine, optim.apply_updates), run(ref, optax.apply_updates))
    # the body's Adam state holds moments only for its own leaves
    state = mine.init(PARAMS)
    body_m = state.inner_states["body"][0].m
    assert body_m["head"]["w"] is None and body_m["blocks"]["1_block"]["attn"]["q"]["w"].shape == (3, 3)


def test_multi_transform_jits_once():
    opt = optim.differential_lr({"head": optim.adam(1e-2), "body": optim.sgd(1e-3)}, {"head": "head"}, "body")
    traces = []

    @jax.jit
    def step(params, state, g):
        traces.append(1)
        u, state = opt.update(g, state, params)
        return optim.apply_updates(params, u), state

    params, state = PARAMS, opt.init(PARAMS)
    for t in range(3):
        params, state = step(params, state, grads_at(t))
    assert len(traces) == 1


def test_errors():
    with pytest.raises(ValueError, match=r"label_by_pattern: 'blocks/0_block/attn/q/b' matches no group"):
        optim.label_by_pattern({"head": "head"})(PARAMS)
    with pytest.raises(ValueError, match=r"multi_transform: labels \['body'\] have no transformation"):
        optim.differential_lr({"head": optim.sgd(0.1)}, {"head": "head"}, "body").init(PARAMS)
    with pytest.raises(TypeError, match="freeze: expected a glob string or an re.Pattern, got 3"):
        optim.freeze(["head", 3])
    with pytest.raises(ValueError, match="masked: the mask's structure differs"):
        optim.masked(optim.sgd(0.1), {"a": True}).init(PARAMS)
