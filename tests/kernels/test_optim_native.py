"""jdl.optim.fused_adam / fused_adamw / fused_sgd (``jdl.kernels.optim_native``): the native
multi-tensor step equals optax's update + apply_updates over several steps (constant and scheduled
learning rates, weight decay, Nesterov), its moments equal float32 arithmetic done op by op in
NumPy bit for bit, ``make_step`` with a fused optimizer trains an MLP as with ``adam``, and bad
input gets a clear error. Skipped, with the reason, where the kernels cannot be built."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jdl import optim
from jdl.kernels import optim_native
from jdl.losses import softmax_cross_entropy
from jdl.nn import Dense, relu, serial
from jdl.train import init_train_state, make_step, supervised
from tests.helpers import devices_xla_flags

pytestmark = pytest.mark.usefixtures("native_kernels")  # tests/kernels/conftest.py

# odd sizes (the 8-wide loop's tails), a scalar, and one leaf big enough to be split over threads
SHAPES = {"a": (3,), "b": (17, 5), "c": (), "d": (2, 3, 4), "e": (70_001,)}


def tree(seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return {k: jnp.asarray(scale * rng.standard_normal(s), jnp.float32) for k, s in SHAPES.items()}


def run_fused(opt, steps=5):
    """θ after ``steps`` jitted, donating fused steps from tree(0) with gradients tree(1 + t)."""
    step = jax.jit(lambda g, s, p: opt.step(g, s, p), donate_argnums=(1, 2))
    params = tree(0)
    state = opt.init(params)
    for t in range(steps):
        params, state = step(tree(1 + t), state, params)
    return params, state


def run_optax(opt, steps=5):
    """The same with an optax (or jdl) transformation's update and optax.apply_updates."""
    def step(g, s, p):
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s

    step = jax.jit(step)
    params = tree(0)
    state = opt.init(params)
    for t in range(steps):
        params, state = step(tree(1 + t), state, params)
    return params, state


def assert_close(got, want, rtol=1e-6):
    """Leaf by leaf within rtol of each value plus rtol · max|leaf| (θ's own rounding: an update
    that cancels θ to near 0 keeps θ's absolute error, not a relative one)."""
    for k in want:
        w = np.asarray(want[k])
        np.testing.assert_allclose(np.asarray(got[k]), w, rtol=rtol, atol=rtol * float(np.max(np.abs(w))), err_msg=k)


schedule = optax.cosine_decay_schedule(3e-2, 10)


@pytest.mark.parametrize("fused, reference", [
    (optim.fused_adam(1e-2), optax.adam(1e-2)),
    (optim.fused_adam(schedule, b1=0.8, b2=0.99, eps=1e-6), optax.adam(schedule, b1=0.8, b2=0.99, eps=1e-6)),
    (optim.fused_adamw(1e-2, weight_decay=0.1), optax.adamw(1e-2, weight_decay=0.1)),
    (optim.fused_sgd(0.1, momentum=0.9), optax.sgd(0.1, momentum=0.9)),
    (optim.fused_sgd(schedule, momentum=0.5, nesterov=True), optax.sgd(schedule, momentum=0.5, nesterov=True)),
], ids=["adam", "adam-schedule", "adamw", "sgd-momentum", "nesterov-schedule"])
def test_fused_step_and_update_equal_optax(fused, reference):
    want, _ = run_optax(reference)
    got, state = run_fused(fused)
    assert_close(got, want)
    assert int(state.count) == 5
    plain, _ = run_optax(fused)  # the plain ``update`` of the same transformation
    assert_close(plain, want)


def test_adam_moments_are_float32_arithmetic_op_by_op():
    """One step from random moments: m' = (1−β₁)g + β₁m and v' = (1−β₂)g² + β₂v as NumPy float32
    computes them, bit for bit, and θ' = θ − η·(m̂/(√v̂ + ε)) to a few ulp."""
    opt, b1, b2, lr = optim.fused_adam(1e-2, b1=0.8, b2=0.95), 0.8, 0.95, 1e-2
    params, grads = tree(0), tree(1)
    state = opt.init(params)
    n = state.m.size
    rng = np.random.default_rng(2)
    m0, v0 = rng.standard_normal(n).astype(np.float32), rng.random(n).astype(np.float32)
    state = state._replace(count=jnp.asarray(2, jnp.int32), m=jnp.asarray(m0), v=jnp.asarray(v0))
    new, state = jax.jit(opt.step)(grads, state, params)
    g = np.concatenate([np.ravel(grads[k]) for k in SHAPES])
    f32 = np.float32
    m1 = f32(1 - b1) * g + f32(b1) * m0
    v1 = f32(1 - b2) * (g * g) + f32(b2) * v0
    np.testing.assert_array_equal(np.asarray(state.m), m1)
    np.testing.assert_array_equal(np.asarray(state.v), v1)
    m_hat, v_hat = m1 / (1 - b1 ** 3), v1 / (1 - b2 ** 3)
    theta = np.concatenate([np.ravel(params[k]) for k in SHAPES]) - lr * m_hat / (np.sqrt(v_hat) + 1e-8)
    got = np.concatenate([np.ravel(new[k]) for k in SHAPES])
    np.testing.assert_allclose(got, theta, rtol=1e-6, atol=1e-7)


def test_make_step_with_fused_adam_trains_as_adam():
    """An MLP's ``make_step`` with ``fused_adam`` gives the params and losses of ``adam`` over
    three steps, and the compiled step updates every param leaf in place (donated, aliased)."""
    model = serial(Dense(32), relu, Dense(10))
    x = jnp.asarray(np.random.default_rng(0).standard_normal((16, 8)), jnp.float32)
    y = jnp.arange(16) % 10
    runs = {}
    for name, opt in (("fused", optim.fused_adam(1e-2)), ("plain", optim.adam(1e-2))):
        step = make_step(supervised(model, softmax_cross_entropy), opt)
        ts = init_train_state(model, opt, x)
        losses = []
        for _ in range(3):
            ts, metrics = step(ts, (x, y))
            losses.append(float(metrics["loss"]))
        runs[name] = (ts.params, losses)
    np.testing.assert_allclose(runs["fused"][1], runs["plain"][1], rtol=1e-6)
    for a, b in zip(jax.tree.leaves(runs["fused"][0]), jax.tree.leaves(runs["plain"][0])):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)
    opt = optim.fused_adam(1e-2)
    ts = init_train_state(model, opt, x)
    hlo = make_step(supervised(model, softmax_cross_entropy), opt).lower(ts, (x, y)).compile().as_text()
    aliased = hlo.split("input_output_alias={", 1)[1].split("}, entry", 1)[0].count("may-alias")
    assert aliased >= len(jax.tree.leaves(ts.params)) + 3  # params, count, m, v (and the step counter)


def test_refusals_name_the_problem():
    opt = optim.fused_adam(1e-3)
    with pytest.raises(ValueError, match=r"float32 params only, \['w'\] is bfloat16"):
        opt.init({"w": jnp.zeros((3,), jnp.bfloat16)})
    params = {"w": jnp.zeros((3,)), "b": jnp.zeros((2,))}
    state = opt.init(params)
    with pytest.raises(ValueError, match="every param needs a gradient"):
        opt.step({"w": jnp.ones((3,)), "b": None}, state, params)
    with pytest.raises(ValueError, match=r"leaf 0's gradient has shape \(2,\), its param \(3,\)"):
        optim_native.adam_update([jnp.ones((2,))], [jnp.ones((3,))], jnp.zeros((3,)), jnp.zeros((3,)),
                                 jnp.ones((4,)), b1=0.9, b2=0.999, eps=1e-8)
    with pytest.raises(ValueError, match=r"a moment must be float32 of shape \(3,\)"):
        optim_native.momentum_update([jnp.ones((3,))], [jnp.ones((3,))], jnp.zeros((4,)), jnp.asarray(-0.1),
                                     momentum=0.9, nesterov=False)
    with pytest.raises(ValueError, match="momentum"):
        optim.fused_sgd(0.1, momentum=1.5)


DATA_PARALLEL = """
import jax, jax.numpy as jnp, numpy as np
from jdl import distributed, optim
from jdl.losses import softmax_cross_entropy
from jdl.nn import Dense, relu, serial
from jdl.train import init_train_state, make_step, supervised
assert jax.device_count() == 2
model = serial(Dense(32), relu, Dense(10))
x = jnp.asarray(np.random.default_rng(0).standard_normal((16, 8)), jnp.float32)
y = jnp.arange(16) % 10
out = []
for opt in (optim.fused_adam(1e-2), optim.adam(1e-2)):
    mesh = distributed.data_mesh()
    ts, batch = distributed.replicate(mesh, init_train_state(model, opt, x)), distributed.shard_batch(mesh, (x, y))
    step = make_step(supervised(model, softmax_cross_entropy), opt)
    for _ in range(3):
        ts, _ = step(ts, batch)
    out.append(jax.tree.leaves(ts.params))
print(max(float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b))) for a, b in zip(*out)))
"""


def test_fused_adam_data_parallel_over_two_devices_equals_adam():
    """On a 2-device mesh (replicated params, sharded batch) the fused step gives adam's params:
    each device runs the kernel on its own replica (a fresh process with 2 CPU devices)."""
    import os
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).parents[2]
    env = dict(os.environ, XLA_FLAGS=devices_xla_flags(2), JAX_PLATFORMS="cpu", PYTHONPATH=str(root))
    env.pop("JAX_NUM_CPU_DEVICES", None)
    done = subprocess.run([sys.executable, "-c", DATA_PARALLEL], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.split()[-1]) < 1e-5
