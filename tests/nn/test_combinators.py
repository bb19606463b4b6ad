import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.nn import Dense, PReLU, parallel, relu, repeat, residual, serial, tanh
from tests.helpers import assert_close, assert_init_shapes, draw_normal

X = draw_normal(jax.random.key(42), (5, 4))


def run(module, params, x):
    return module.apply(params, {}, x)[0]


def test_serial_keys_and_values(key):
    model = serial(Dense(8), jax.nn.relu, Dense(3))
    params, state, y = assert_init_shapes(model, X, key)
    assert list(params) == ["0_dense", "1_relu", "2_dense"] and params["1_relu"] == {}
    h = jnp.maximum(X @ params["0_dense"]["w"] + params["0_dense"]["b"][None], 0)
    np.testing.assert_allclose(y, h @ params["2_dense"]["w"] + params["2_dense"]["b"][None], rtol=1e-5, atol=1e-6)


def test_children_get_folded_keys(key):
    model = serial(Dense(4), Dense(4))
    params, _ = model.init(key, X)
    expect, _ = Dense(4).init(jax.random.fold_in(key, 1), jnp.ones((1, 4)))
    assert_close(params["1_dense"], expect, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["serial", "residual", "repeat", "parallel"])
def test_same_under_jit_vmap_grad(name, key):
    model = {
        "serial": serial(Dense(6), tanh, Dense(4)),
        "residual": residual(serial(Dense(4), tanh)),
        "repeat": repeat(serial(Dense(4), tanh), 3),
        "parallel": serial(parallel(Dense(2), Dense(3)), lambda ys: jnp.concatenate(ys, -1)),
    }[name]
    params, _ = model.init(key, X)
    eager = run(model, params, X)
    assert_close(jax.jit(run, static_argnums=0)(model, params, X), eager)
    per_example = jax.vmap(lambda x: run(model, params, x[None])[0])(X)
    assert_close(per_example, eager)

    def loss(p):
        return jnp.sum(run(model, p, X) ** 2)

    assert_close(jax.jit(jax.grad(loss))(params), jax.grad(loss)(params))


def test_residual_adds_input(key):
    body = serial(Dense(4), relu)
    params, _ = residual(body).init(key, X)
    fx = run(body, params["0_serial"], X)
    np.testing.assert_allclose(run(residual(body), params, X), fx + X, rtol=1e-6)


def test_residual_with_shortcut_and_mismatch(key):
    model = residual(Dense(6), shortcut=Dense(6, use_bias=False))
    params, _ = model.init(key, X)
    expect = run(Dense(6), params["0_dense"], X) + X @ params["1_dense"]["w"]
    np.testing.assert_allclose(run(model, params, X), expect, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"residual: the branch maps \(5, 4\) to \(5, 6\) but the shortcut gives \(5, 4\)"):
        residual(Dense(6)).init(key, X)


def test_repeat_equals_hand_chained_copies(key):
    layer = serial(Dense(4), tanh)
    model = repeat(layer, 3)
    params, _ = model.init(key, X)
    assert params["0_dense"]["w"].shape == (3, 4, 4)
    h = X
    chained = serial(layer, layer, layer)
    unstacked = {f"{i}_serial": jax.tree.map(lambda a: a[i], params) for i in range(3)}
    for i in range(3):
        h = run(layer, jax.tree.map(lambda a: a[i], params), h)
    assert_close(run(model, params, X), h)
    assert_close(run(chained, unstacked, X), h)
    # and the copies are initialized exactly as serial would initialize them
    serial_params, _ = chained.init(key, X)
    assert_close(unstacked, serial_params, rtol=0, atol=0)


def test_repeat_requires_shape_preserving_layer(key):
    with pytest.raises(ValueError, match=r"repeat: dense maps \(5, 4\) float32 to \(5, 2\) float32"):
        repeat(Dense(2), 2).init(key, X)
    with pytest.raises(ValueError, match="repeat: n must be a positive int"):
        repeat(Dense(4), 0)


def test_parallel_on_tuple_and_errors(key):
    model = parallel(Dense(2), PReLU())
    params, _ = model.init(key, (X, X[:, :3]))
    y1, y2 = run(model, params, (X, X[:, :3]))
    assert y1.shape == (5, 2) and y2.shape == (5, 3)
    with pytest.raises(ValueError, match="parallel: got a tuple of 3 inputs for 2 branches"):
        run(model, params, (X, X, X))
    with pytest.raises(TypeError, match="expected a jdl Module or a function"):
        serial(Dense(2), 3)


def test_stochastic_key_folding_is_order_independent():
    """A child's key depends only on its index: serial passes fold_in(key, i) to child i."""
    seen = []

    from jdl.core import Module

    def probe():
        def apply(params, state, x, *, key=None, train=False):
            seen.append(key)
            return x, state
        return Module(lambda k, x: ({}, {}), apply, "probe")

    model = serial(probe(), probe())
    model.apply({"0_probe": {}, "1_probe": {}}, {"0_probe": {}, "1_probe": {}}, X, key=jax.random.key(7))
    np.testing.assert_array_equal(jax.random.key_data(seen[1]),
                                  jax.random.key_data(jax.random.fold_in(jax.random.key(7), 1)))


def test_named_children_key_params_by_name_and_compute_the_same(key):
    from jdl.nn import named
    x = draw_normal(key, (2, 4))
    pos = serial(Dense(3), relu, residual(Dense(3), Dense(3)))
    nam = serial(named("fc1", Dense(3)), relu, named("block", residual(Dense(3), named("proj", Dense(3)))))
    p, s = pos.init(key, x)
    q, _ = nam.init(key, x)
    assert set(q) == {"fc1", "1_relu", "block"} and set(q["block"]) == {"0_dense", "proj"}
    # the init keys follow the position, not the name: the same numbers under the new keys
    np.testing.assert_array_equal(q["fc1"]["w"], p["0_dense"]["w"])
    np.testing.assert_array_equal(q["block"]["proj"]["w"], p["2_residual"]["1_dense"]["w"])
    np.testing.assert_array_equal(nam.apply(q, {}, x)[0], pos.apply(p, s, x)[0])
    with pytest.raises(ValueError, match=r"children share the params key\(s\) \['a'\]"):
        serial(named("a", Dense(2)), named("a", Dense(2)))
    with pytest.raises(ValueError, match="named: a name is a non-empty string without '/'"):
        named("a/b", Dense(2))


def test_residual_activation_after_the_sum(key):
    x = draw_normal(key, (3, 4))
    m = residual(Dense(4), activation=relu)
    p, s = m.init(key, x)
    np.testing.assert_allclose(m.apply(p, s, x)[0], jax.nn.relu(x @ p["0_dense"]["w"] + p["0_dense"]["b"][None] + x),
                               rtol=1e-6)
