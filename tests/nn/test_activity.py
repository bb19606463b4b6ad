"""Activity L1: the layer's gradient equals that of J = L + λ/B·Σ|a| (jax.grad of the explicit
penalty, and central finite differences in float64); forward and eval are the identity."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl.nn import ActivityL1, Dense, serial, tanh
from jdl.regularizers import activity_l1

LAM = 0.3




def objective_pieces(dtype):
    rng = np.random.default_rng(0)
    x, y = jnp.asarray(rng.normal(size=(6, 4)), dtype), jnp.asarray(rng.normal(size=(6, 2)), dtype)
    first, second = serial(Dense(5), tanh), Dense(2)
    model = serial(first, ActivityL1(LAM), second)
    params, state = model.init(jax.random.key(2), x)
    params = jax.tree.map(lambda p: p.astype(dtype), params)
    return x, y, model, params, state, first, second


def test_activity_l1_gradient_equals_the_explicit_penalty():
    x, y, model, params, state, first, second = objective_pieces(jnp.float32)

    def with_layer(p):  # L only: the layer adds λ·R's gradient
        return jnp.mean((model.apply(p, state, x, train=True)[0] - y) ** 2)

    def explicit(p):  # J = L + λ·R(a), written out
        a, _ = first.apply(p["0_serial"], {}, x)
        out, _ = second.apply(p["2_dense"], {}, a)
        return jnp.mean((out - y) ** 2) + LAM * activity_l1(a)

    def plain(p):  # L without the layer
        return jnp.mean((serial(first, second).apply({"0_serial": p["0_serial"], "1_dense": p["2_dense"]}, {}, x)[0] - y) ** 2)

    g_layer, g_explicit, g_plain = jax.jit(lambda p: (jax.grad(with_layer)(p), jax.grad(explicit)(p), jax.grad(plain)(p)))(params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), g_layer, g_explicit)
    assert not np.allclose(g_layer["0_serial"]["0_dense"]["w"], g_plain["0_serial"]["0_dense"]["w"])
    np.testing.assert_allclose(g_layer["2_dense"]["w"], g_plain["2_dense"]["w"], rtol=1e-6)  # above it: untouched


def test_activity_l1_gradient_equals_finite_differences():
    with jax.enable_x64(True):
        x, y, model, params, state, first, second = objective_pieces(jnp.float64)
        w = params["0_serial"]["0_dense"]["w"]

        def J(w):  # the objective the layer stands for, in closed form
            p = {**params["0_serial"]["0_dense"], "w": w}
            a = jnp.tanh(x @ p["w"] + p["b"][None])
            out = a @ params["2_dense"]["w"] + params["2_dense"]["b"][None]
            return jnp.mean((out - y) ** 2) + LAM * jnp.sum(jnp.abs(a)) / x.shape[0]

        def L_with_layer(w):
            p = {**params, "0_serial": {**params["0_serial"], "0_dense": {**params["0_serial"]["0_dense"], "w": w}}}
            return jnp.mean((model.apply(p, state, x, train=True)[0] - y) ** 2)

        h = 1e-6
        e = h * jnp.eye(w.size, dtype=w.dtype).reshape(w.size, *w.shape)  # one perturbation per entry
        grad, fd = jax.jit(lambda w, e: (jax.grad(L_with_layer)(w),
                                         jax.vmap(lambda d: (J(w + d) - J(w - d)) / (2 * h))(e).reshape(w.shape)))(w, e)
        np.testing.assert_allclose(np.asarray(grad), np.asarray(fd), rtol=1e-6, atol=1e-8)


def test_activity_l1_is_the_identity_forward_and_in_eval(key):
    a = jnp.asarray(np.random.default_rng(1).normal(size=(3, 4)), jnp.float32)
    layer = ActivityL1(0.5)
    assert jnp.array_equal(layer.apply({}, {}, a, train=True)[0], a)
    assert jnp.array_equal(jax.grad(lambda a: jnp.sum(layer.apply({}, {}, a)[0]))(a), jnp.ones_like(a))
    np.testing.assert_allclose(jax.grad(lambda a: jnp.sum(layer.apply({}, {}, a, train=True)[0]))(a),
                               1 + 0.5 / 3 * jnp.sign(a), rtol=1e-6)
    assert float(activity_l1(jnp.array([[1.0, -2.0], [0.0, 3.0]]))) == 3.0
    with pytest.raises(ValueError, match="ActivityL1: coef must be >= 0"):
        ActivityL1(-1.0)
    assert jdl.nn.ActivityL1 is ActivityL1
