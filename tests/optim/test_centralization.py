"""Gradient centralization: Φ(G) = G − mean over the fan-in axes, per output unit (the last axis
in jdl's layouts), vectors untouched; optax's ``centralize`` keeps the first axis instead, which
``centralize(output_axis=0)`` reproduces; chained with sgd it equals a hand-written loop."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jdl import optim


def grads_tree(key):
    rng = np.random.default_rng(0)
    normal = lambda *shape: jnp.asarray(rng.normal(size=shape), jnp.float32)
    return {"conv": {"w": normal(3, 3, 2, 4), "b": normal(4)}, "dense": {"w": normal(5, 3)}}


def test_centralize_equals_the_equation(key):
    g = grads_tree(key)
    u, _ = jax.jit(optim.centralize().update)(g, optim.centralize().init(g))
    w = np.asarray(g["conv"]["w"], np.float64).reshape(-1, 4)  # (fan-in 18, outputs 4)
    np.testing.assert_allclose(np.asarray(u["conv"]["w"]).reshape(-1, 4), w - w.mean(0), rtol=1e-5, atol=1e-6)
    d = np.asarray(g["dense"]["w"], np.float64)
    np.testing.assert_allclose(u["dense"]["w"], d - d.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(u["conv"]["b"], g["conv"]["b"])  # rank 1: unchanged
    np.testing.assert_allclose(np.asarray(u["dense"]["w"]).sum(0), 0.0, atol=1e-5)


def test_centralize_output_axis_0_equals_optax(key):
    g = grads_tree(key)
    ours, _ = optim.centralize(output_axis=0).update(g, optim.centralize(0).init(g))
    theirs, _ = optax.centralize().update(g, optax.centralize().init(g))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), ours, theirs)
    assert not np.allclose(ours["dense"]["w"], optim.centralize().update(g, ())[0]["dense"]["w"])


def test_centralize_then_sgd_equals_a_hand_loop(key):
    rng = np.random.default_rng(1)
    x, y = (jnp.asarray(rng.normal(size=s), jnp.float32) for s in ((16, 5), (16, 3)))
    params = {"w": jnp.asarray(rng.normal(size=(5, 3)), jnp.float32), "b": jnp.zeros(3)}
    loss = lambda p: jnp.mean((x @ p["w"] + p["b"][None] - y) ** 2)
    opt = optim.chain(optim.centralize(), optim.sgd(0.1))
    state, p = opt.init(params), params
    step = jax.jit(lambda p, state: opt.update(jax.grad(loss)(p), state, p))
    w, b = np.asarray(params["w"], np.float64), np.zeros(3)
    xn, yn = np.asarray(x, np.float64), np.asarray(y, np.float64)
    for _ in range(5):
        u, state = step(p, state)
        p = optim.apply_updates(p, u)
        r = 2 * (xn @ w + b - yn) / yn.size  # ∂L/∂ŷ of the mean squared error
        g_w, g_b = xn.T @ r, r.sum(0)
        w, b = w - 0.1 * (g_w - g_w.mean(0, keepdims=True)), b - 0.1 * g_b
    np.testing.assert_allclose(p["w"], w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p["b"], b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.sum(np.asarray(p["w"]) - np.asarray(params["w"]), 0), 0.0, atol=1e-5)
