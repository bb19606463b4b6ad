"""The rest of optax's contract, each against optax on the same case: extra keyword arguments to
update, None gradient leaves, update(None, …) for weight decay, prefix masks, moments stored in
bfloat16 (mu_dtype, accumulator_dtype), and RMSProp's bias correction."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jdl import optim
from tests.helpers import assert_close
from tests.optim.conftest import params_and_grads, run_steps


def test_extra_args_pass_through_chain_to_transforms_that_take_them():
    """optax's newer protocol: update(g, s, θ, value=loss); chain hands the extras to a transform
    whose update takes **extra_args and drops them for the others (optax's with_extra_args_support)."""
    seen = []

    def update(grads, state, params=None, **extra_args):
        seen.append(extra_args)
        return jax.tree.map(lambda g: extra_args["value"] * g, grads), state

    opt = optim.chain(optim.scale_by_adam(), optim.GradientTransformation(lambda p: optim.EmptyState(), update),
                      optim.scale(-0.1))
    ref = optax.chain(optax.scale_by_adam(), optax.GradientTransformationExtraArgs(lambda p: optax.EmptyState(), update),
                      optax.scale(-0.1))
    params, grads = params_and_grads("dense", steps=1)
    g = jax.tree.map(lambda x: x[0], grads)
    ours, _ = jax.jit(opt.update)(g, opt.init(params), params, value=3.0)
    theirs, _ = jax.jit(ref.update)(g, ref.init(params), params, value=3.0)
    assert_close(ours, theirs, rtol=1e-7, atol=0)
    assert [set(s) for s in seen] == [{"value"}, {"value"}]
    # every alias takes them (and ignores them): optax's optimizers are called this way
    for alias in (optim.adam(0.1), optim.sgd(0.1, momentum=0.9), optim.adamw(0.1), optim.inject_hyperparams(optim.adam)(0.1)):
        u, _ = alias.update(g, alias.init(params), params, value=1.0)
        assert_close(u, alias.update(g, alias.init(params), params)[0], rtol=0, atol=0)


NONE_LEAF = {
    "adam": lambda o: o.adam(0.1), "adamw": lambda o: o.adamw(0.1, weight_decay=0.1),
    "sgd_nesterov": lambda o: o.sgd(0.1, momentum=0.9, nesterov=True), "adagrad": lambda o: o.adagrad(0.1),
    "rmsprop_centered": lambda o: o.rmsprop(0.1, centered=True), "clip_sgd": lambda o: o.chain(o.clip(0.5), o.sgd(0.1)),
}


@pytest.mark.parametrize("name", sorted(NONE_LEAF))
def test_none_gradient_leaf_gives_none_update_and_keeps_the_param(name):
    """A None gradient (a frozen param) gives a None update, as in optax, and the other leaves take
    the steps optax takes on the tree without that leaf. jdl keeps that leaf's moment, so the state
    keeps its structure and runs as a lax.scan carry; optax sets it to None (trace, rmsprop), and
    its adam and adagrad refuse the None (they cast the new moments like the old ones)."""
    params, grads = params_and_grads("dense", steps=3)
    grads = {"w": grads["w"], "b": None}
    ours, theirs = NONE_LEAF[name](optim), NONE_LEAF[name](optax)
    g = {"w": grads["w"][0], "b": None}
    u, s = ours.update(g, ours.init(params), params)
    assert u["b"] is None
    assert jax.tree.structure(s) == jax.tree.structure(ours.init(params))
    if name in ("adam", "adamw", "adagrad"):
        with pytest.raises(ValueError, match="pytree structure error"):
            theirs.update(g, theirs.init(params), params)
    else:
        v, _ = theirs.update(g, theirs.init(params), params)
        assert v["b"] is None
        assert_close(u["w"], v["w"], rtol=1e-6, atol=1e-7)
    stepped = run_steps(ours, params, grads)
    np.testing.assert_array_equal(stepped["b"], params["b"])  # apply_updates leaves it as it is
    reference = run_steps(NONE_LEAF[name](optax), {"w": params["w"]}, {"w": grads["w"]}, apply=optax.apply_updates)
    assert_close(stepped["w"], reference["w"], rtol=1e-6, atol=1e-7)


def test_add_decayed_weights_accepts_update_none_like_optax():
    """optax's own test case: update(None, state, params) returns None."""
    params = (jnp.ones(2), {"a": jnp.ones(2), "b": jnp.ones(2)})
    for lib in (optim, optax):
        t = lib.add_decayed_weights(0.1, mask=None)
        assert t.update(None, t.init(params), params)[0] is None
    chained = optim.chain(optim.add_decayed_weights(0.1))
    assert chained.update(None, chained.init(params), params)[0] is None


PREFIX_MASKS = {
    "layer": {"0_dense": True, "scale": False},
    "inner": {"0_dense": {"w": True, "b": False}, "scale": [True, False]},
    "callable": lambda p: {"0_dense": False, "scale": True},
}


@pytest.mark.parametrize("mask", sorted(PREFIX_MASKS))
def test_prefix_mask_equals_optax(mask):
    """A mask may stop above the leaves: a bool at a node covers its whole subtree."""
    params, grads = params_and_grads("nested", steps=10)
    m = PREFIX_MASKS[mask]
    ours = run_steps(optim.adamw(0.05, weight_decay=0.3, mask=m), params, grads)
    theirs = run_steps(optax.adamw(0.05, weight_decay=0.3, mask=m), params, grads, apply=optax.apply_updates)
    assert_close(ours, theirs, rtol=1e-6, atol=1e-6)


def test_mask_that_is_not_a_prefix_is_refused():
    params = {"w": jnp.ones(2), "b": jnp.ones(2)}
    t = optim.add_decayed_weights(0.1, mask={"w": True, "c": False})
    with pytest.raises(ValueError, match=r"add_decayed_weights: the mask's structure differs .* not a prefix"):
        t.update(params, t.init(params), params)


LOW_PRECISION = {
    "adam": lambda o: o.adam(0.05, mu_dtype=jnp.bfloat16),
    "adamw": lambda o: o.adamw(0.05, weight_decay=0.1, mu_dtype=jnp.bfloat16),
    "sgd_momentum": lambda o: o.sgd(0.05, momentum=0.9, accumulator_dtype=jnp.bfloat16),
    "sgd_nesterov": lambda o: o.sgd(0.05, momentum=0.9, nesterov=True, accumulator_dtype=jnp.bfloat16),
}


@pytest.mark.parametrize("name", sorted(LOW_PRECISION))
def test_bfloat16_moments_equal_optax(name):
    """m (Adam) or the trace (SGD) stored in bfloat16, computed in float32 before the rounding."""
    params, grads = params_and_grads("nested", steps=20)
    ours, theirs = LOW_PRECISION[name](optim), LOW_PRECISION[name](optax)
    state = ours.init(params)
    stored = state[0].m if "adam" in name else state[0].t
    assert {x.dtype for x in jax.tree.leaves(stored)} == {jnp.dtype(jnp.bfloat16)}
    stepped = run_steps(ours, params, grads)
    assert_close(stepped, run_steps(theirs, params, grads, apply=optax.apply_updates), rtol=1e-6, atol=1e-6)
    if name == "adam":  # and the rounding is real: a float32 m takes other steps
        diff = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), stepped, run_steps(optim.adam(0.05), params, grads))
        assert max(jax.tree.leaves(diff)) > 1e-4


BIAS_CORRECTED = {
    "rmsprop": lambda o: o.rmsprop(0.05, decay=0.8, bias_correction=True),
    "rmsprop_eps_outside": lambda o: o.rmsprop(0.05, eps_in_sqrt=False, bias_correction=True),
    "rmsprop_centered": lambda o: o.rmsprop(0.05, decay=0.8, eps=0.1, centered=True, bias_correction=True),
}


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("name", sorted(BIAS_CORRECTED))
def test_rmsprop_bias_correction_equals_optax(name, jit):
    params, grads = params_and_grads("dense", steps=5)
    ours, theirs = BIAS_CORRECTED[name](optim), BIAS_CORRECTED[name](optax)
    s, t = ours.init(params), theirs.init(params)
    p, q = params, params
    update_ours, update_theirs = (jax.jit(ours.update), jax.jit(theirs.update)) if jit else (ours.update, theirs.update)
    for i in range(5):
        g = jax.tree.map(lambda x: x[i], grads)
        (u, s), (v, t) = update_ours(g, s, p), update_theirs(g, t, q)
        p, q = optim.apply_updates(p, u), optax.apply_updates(q, v)
    assert_close(p, q, rtol=1e-6, atol=1e-7)
    assert int(s[0].count) == 5


def test_bias_corrected_rms_is_adam_without_momentum():
    """scale_by_rms(β₂, eps_in_sqrt=False, bias_correction=True) = scale_by_adam(b1=0, b2=β₂)."""
    params, grads = params_and_grads("nested", steps=20)
    rms = optim.chain(optim.scale_by_rms(0.99, 1e-8, eps_in_sqrt=False, bias_correction=True), optim.scale(-0.05))
    adam = optim.chain(optim.scale_by_adam(0.0, 0.99, 1e-8), optim.scale(-0.05))
    assert_close(run_steps(rms, params, grads), run_steps(adam, params, grads), rtol=1e-6, atol=1e-7)
