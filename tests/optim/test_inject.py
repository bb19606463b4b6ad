"""inject_hyperparams: hyperparameters in the state, equal to optax.inject_hyperparams step for step
(eager and jitted), changed mid-training without recompiling; and optax's own inject_hyperparams
wraps jdl's optimizers (their argument checks skip traced values)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jdl import optim
from tests.helpers import assert_close
from tests.optim.conftest import params_and_grads, run_steps

SCHEDULE = (optim.schedules.cosine_decay_schedule(0.05, 20, alpha=0.1), optax.cosine_decay_schedule(0.05, 20, 0.1))

# name -> (lib, lr) -> the injected optimizer
INJECTED = {
    "adam": lambda o, lr: o.inject_hyperparams(o.adam)(learning_rate=lr, b1=0.8),
    "adamw": lambda o, lr: o.inject_hyperparams(o.adamw)(lr, weight_decay=0.1),
    "sgd_momentum": lambda o, lr: o.inject_hyperparams(o.sgd)(lr, momentum=0.9),
    "rmsprop": lambda o, lr: o.inject_hyperparams(o.rmsprop)(lr, decay=0.8),
}


@pytest.mark.parametrize("scheduled", [False, True], ids=["constant", "schedule"])
@pytest.mark.parametrize("name", sorted(INJECTED))
def test_injected_equals_optax_injected(name, scheduled):
    params, grads = params_and_grads("nested", steps=20)
    lr_jdl, lr_optax = SCHEDULE if scheduled else (0.05, 0.05)
    ours = run_steps(INJECTED[name](optim, lr_jdl), params, grads)
    theirs = run_steps(INJECTED[name](optax, lr_optax), params, grads, apply=optax.apply_updates)
    # (not to 1e-6 from the plain optimizer: a float32 β rounds 1 − β unlike the Python float,
    # 5e-5 relative after 20 Adam steps, the same gap in optax)
    assert_close(ours, theirs, rtol=1e-6, atol=1e-6)


def _eager_steps(opt, params, grads, apply, n=5):
    """n eager updates; returns the final params and state."""
    state = opt.init(params)
    for i in range(n):
        u, state = opt.update(jax.tree.map(lambda g: g[i], grads), state, params)
        params = apply(params, u)
    return params, state


def test_eager_state_logs_the_scheduled_learning_rate_like_optax():
    params, grads = params_and_grads("dense", steps=5)
    ours, s = _eager_steps(INJECTED["adam"](optim, SCHEDULE[0]), params, grads, optim.apply_updates)
    theirs, t = _eager_steps(INJECTED["adam"](optax, SCHEDULE[1]), params, grads, optax.apply_updates)
    assert_close(ours, theirs, rtol=1e-6, atol=1e-7)
    assert int(s.count) == int(t.count) == 5
    for name in ("learning_rate", "b1", "b2", "eps"):
        np.testing.assert_allclose(s.hyperparams[name], t.hyperparams[name], rtol=1e-7)
        assert s.hyperparams[name].dtype == t.hyperparams[name].dtype == jnp.float32
    # η used by the 5th update (t = 4) is what the state shows
    np.testing.assert_allclose(s.hyperparams["learning_rate"], SCHEDULE[0](4), rtol=1e-7)


def test_set_hyperparams_mid_training_equals_optax_and_does_not_recompile():
    params, grads = params_and_grads("dense", steps=6)
    traces = []

    def make_step(opt, apply):
        def step(p, s, g):
            traces.append(opt)
            u, s = opt.update(g, s, p)
            return apply(p, u), s
        return jax.jit(step)

    ours = optim.inject_hyperparams(optim.adam)(1e-2)
    theirs = optax.inject_hyperparams(optax.adam)(1e-2)
    step, ref_step = make_step(ours, optim.apply_updates), make_step(theirs, optax.apply_updates)
    p, s, q, t = params, ours.init(params), params, theirs.init(params)
    for i in range(6):
        if i == 3:  # divide η by 10 halfway
            s = optim.set_hyperparams(s, learning_rate=1e-3)
            t.hyperparams["learning_rate"] = jnp.asarray(1e-3)  # optax's idiom: mutate the dict
        g = jax.tree.map(lambda x: x[i], grads)
        (p, s), (q, t) = step(p, s, g), ref_step(q, t, g)
    assert_close(p, q, rtol=1e-6, atol=1e-7)
    assert traces.count(ours) == 1  # η kept its dtype: one compiled step for both values
    np.testing.assert_allclose(s.hyperparams["learning_rate"], 1e-3, rtol=1e-7)


@pytest.mark.parametrize("name", ["adam", "sgd_momentum", "rmsprop"])
def test_optax_inject_hyperparams_wraps_jdl_optimizers(name):
    """optax.inject_hyperparams feeds traced hyperparameters to jdl's factory under jit; jdl's
    checks once called float() on them and failed."""
    params, grads = params_and_grads("nested", steps=10)
    factory = {"adam": optim.adam, "sgd_momentum": optim.sgd, "rmsprop": optim.rmsprop}[name]
    reference = {"adam": optax.adam, "sgd_momentum": optax.sgd, "rmsprop": optax.rmsprop}[name]
    kwargs = {"momentum": 0.9} if name == "sgd_momentum" else {}
    ours = run_steps(optax.inject_hyperparams(factory)(0.05, **kwargs), params, grads)
    theirs = run_steps(optax.inject_hyperparams(reference)(0.05, **kwargs), params, grads)
    assert_close(ours, theirs, rtol=1e-6, atol=1e-6)


def test_static_mask_function_and_bfloat16_moment():
    """A mask function is named in static_args (else it would be taken for a schedule); a dtype
    stays static by itself in jdl (optax needs it in static_args too)."""
    params, grads = params_and_grads("nested", steps=10)
    kwargs = dict(weight_decay=0.2, mask=optim.weights_only, mu_dtype=jnp.bfloat16)
    opt = optim.inject_hyperparams(optim.adamw, static_args="mask")(0.05, **kwargs)
    ref = optax.inject_hyperparams(optax.adamw, static_args=("mask", "mu_dtype"))(0.05, **kwargs)
    assert opt.init(params).inner_state[0].m["0_dense"]["w"].dtype == jnp.bfloat16
    assert_close(run_steps(opt, params, grads), run_steps(ref, params, grads), rtol=1e-6, atol=1e-6)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match=r"inject_hyperparams: static_args \['lr'\] are not arguments of adam"):
        optim.inject_hyperparams(optim.adam, static_args="lr")
    state = optim.inject_hyperparams(optim.sgd)(0.1).init({"w": jnp.ones(2)})
    with pytest.raises(ValueError, match=r"set_hyperparams: no hyperparameter \['lr'\] .*has \['learning_rate'\]"):
        optim.set_hyperparams(state, lr=0.01)
