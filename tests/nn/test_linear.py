import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl.nn import Dense, Flatten
from tests.helpers import assert_close, assert_init_shapes, draw_normal


def test_dense_shapes_and_keys(key):
    params, state, y = assert_init_shapes(Dense(3), jnp.ones((5, 4)), key)
    assert set(params) == {"w", "b"} and params["w"].shape == (4, 3) and state == {}
    assert y.shape == (5, 3)
    assert set(Dense(3, use_bias=False).init(key, jnp.ones((1, 4)))[0]) == {"w"}


def test_dense_init_from_shape_struct(key):
    p1, _ = Dense(3).init(key, jax.ShapeDtypeStruct((7, 4), jnp.float32))
    p2, _ = Dense(3).init(key, jnp.zeros((2, 4)))
    assert_close(p1, p2, rtol=0, atol=0)


def test_dense_equals_flax_given_same_weights(key):
    x = draw_normal(key, (6, 5))
    params, _ = Dense(4).init(jax.random.key(1), x)
    params["b"] = draw_normal(jax.random.key(2), (4,))
    y, _ = Dense(4).apply(params, {}, x)
    y_flax = fnn.Dense(4).apply({"params": {"kernel": params["w"], "bias": params["b"]}}, x)
    np.testing.assert_allclose(y, y_flax, rtol=1e-5, atol=1e-6)


def test_dense_3d_input_equals_per_position(key):
    x = draw_normal(key, (2, 3, 5))
    params, _ = Dense(4).init(key, x)
    y, _ = Dense(4).apply(params, {}, x)
    np.testing.assert_allclose(y, jnp.einsum("btc,cd->btd", x, params["w"]) + params["b"][None, None], rtol=1e-5, atol=1e-6)


@pytest.mark.torch
def test_dense_equals_torch_linear(key):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).normal(size=(6, 5)).astype(np.float32)
    params, _ = Dense(4).init(key, x)
    ref = torch.nn.functional.linear(torch.tensor(x), torch.tensor(np.asarray(params["w"]).T),
                                     torch.tensor(np.asarray(params["b"])))
    np.testing.assert_allclose(Dense(4).apply(params, {}, x)[0], ref.numpy(), rtol=1e-5, atol=1e-6)


def test_dense_wrong_input_names_layer_and_shapes(key):
    params, _ = Dense(3).init(key, jnp.ones((1, 4)))
    with pytest.raises(ValueError, match=r"Dense: input of shape \(2, 5\) has d_in=5 but the layer was initialized with d_in=4"):
        Dense(3).apply(params, {}, jnp.ones((2, 5)))


def test_dense_bad_arguments():
    with pytest.raises(ValueError, match="Dense: d_out must be a positive int"):
        Dense(0)
    with pytest.raises(TypeError, match="Dense: expected a floating-point input"):
        Dense(2).init(jax.random.key(0), jnp.ones((1, 3), jnp.int32))


def test_dense_gradient_matches_finite_differences():
    with jax.enable_x64(True):
        x = draw_normal(jax.random.key(3), (4, 3), jnp.float64)
        params, _ = Dense(2).init(jax.random.key(4), x)
        errors = jdl.autodiff.check_grads(lambda p: jnp.sum(jnp.sin(Dense(2).apply(p, {}, x)[0])), params)
    assert max(errors.values()) < 1e-8, errors


def test_flatten(key):
    x = jnp.arange(24.0).reshape(2, 3, 4, 1)
    _, _, y = assert_init_shapes(Flatten(), x, key)
    np.testing.assert_array_equal(y, np.arange(24.0).reshape(2, 12))
