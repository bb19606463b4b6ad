"""The position-wise feed-forward network: equal to PyTorch's Linear → activation → Linear given
the same weights, to the formula on 2-D and 3-D inputs, and to finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl.nn import FeedForward, feed_forward
from tests.helpers import assert_init_shapes, draw_normal

B, T, D, F = 2, 3, 4, 10


def params_of(key, d=D, f=F, dtype=jnp.float32):
    k = jax.random.split(key, 4)
    return {"fc1": {"w": draw_normal(k[0], (d, f), dtype), "b": draw_normal(k[1], (f,), dtype)},
            "fc2": {"w": draw_normal(k[2], (f, d), dtype), "b": draw_normal(k[3], (d,), dtype)}}


def test_shapes_and_the_formula(key):
    x = draw_normal(key, (B, T, D))
    params, state, y = assert_init_shapes(FeedForward(F), x)
    assert jax.tree.map(jnp.shape, params) == {"fc1": {"w": (D, F), "b": (F,)}, "fc2": {"w": (F, D), "b": (D,)}}
    assert jdl.param_count(params) == 2 * D * F + F + D and state == {}
    p = params_of(key)
    xn = np.asarray(x, np.float64)
    h = np.maximum(xn @ np.asarray(p["fc1"]["w"], np.float64) + np.asarray(p["fc1"]["b"]), 0)
    want = h @ np.asarray(p["fc2"]["w"], np.float64) + np.asarray(p["fc2"]["b"])
    y, _ = FeedForward(F, "relu").apply(p, {}, x)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(FeedForward(F, "relu").apply(p, {}, x[0])[0], want[0], rtol=1e-5, atol=1e-4)


@pytest.mark.torch
@pytest.mark.parametrize("activation", ["relu", "gelu", "gelu_tanh"])
def test_equals_torch(key, activation):
    torch = pytest.importorskip("torch")
    p = params_of(key)
    x = np.asarray(draw_normal(jax.random.key(1), (B, T, D)))
    act = {"relu": torch.nn.ReLU(), "gelu": torch.nn.GELU(), "gelu_tanh": torch.nn.GELU("tanh")}[activation]
    ref = torch.nn.Sequential(torch.nn.Linear(D, F), act, torch.nn.Linear(F, D))
    with torch.no_grad():
        for lin, name in ((ref[0], "fc1"), (ref[2], "fc2")):
            lin.weight.copy_(torch.tensor(np.asarray(p[name]["w"]).T))
            lin.bias.copy_(torch.tensor(np.asarray(p[name]["b"])))
        want = ref(torch.tensor(x)).numpy()
    y, _ = jax.jit(FeedForward(F, activation).apply)(p, {}, jnp.asarray(x))
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_gradients_match_finite_differences(key):
    with jax.enable_x64(True):
        p = params_of(key, 3, 5, jnp.float64)
        x = draw_normal(jax.random.key(2), (2, 2, 3), jnp.float64)
        f = lambda t: jnp.sum(jnp.sin(feed_forward(t["p"], t["x"])))  # exact GELU
        errors = jdl.autodiff.check_grads(f, {"p": p, "x": x})
    assert max(errors.values()) < 1e-7, errors


def test_dropout_on_the_hidden_units(key):
    p = params_of(key)
    x = draw_normal(key, (B, T, D))
    layer = FeedForward(F, dropout=0.5)
    y_eval, _ = layer.apply(p, {}, x)
    y1, _ = layer.apply(p, {}, x, key=jax.random.key(3), train=True)
    y2, _ = layer.apply(p, {}, x, key=jax.random.key(3), train=True)
    np.testing.assert_array_equal(y1, y2)
    assert not np.allclose(y1, y_eval)
    h = jdl.nn.gelu(x.reshape(B * T, D) @ p["fc1"]["w"] + p["fc1"]["b"][None])  # the same mask by hand
    h = jdl.nn.dropout(jax.random.key(3), h, 0.5)
    y_hand = (h @ p["fc2"]["w"] + p["fc2"]["b"][None]).reshape(B, T, D)
    np.testing.assert_allclose(y1, y_hand, rtol=1e-5, atol=1e-5)


def test_errors_name_the_layer(key):
    with pytest.raises(ValueError, match="FeedForward: d_ff must be a positive int, got 0"):
        FeedForward(0)
    with pytest.raises(ValueError, match=r"FeedForward: activation must be one of \['gelu', 'gelu_tanh', 'relu'\]"):
        FeedForward(4, "swish")
    with pytest.raises(ValueError, match="FeedForward: the drop probability p must be a number in"):
        FeedForward(4, dropout=1.0)
    p = params_of(key)
    with pytest.raises(ValueError, match=r"FeedForward: input of shape \(2, 5\) has d_model=5 but the "
                                         r"layer was initialized with d_model=4"):
        FeedForward(F).apply(p, {}, jnp.ones((2, 5)))
    with pytest.raises(ValueError, match="FeedForward is stochastic and needs a random key"):
        FeedForward(F, dropout=0.1).apply(p, {}, jnp.ones((2, D)), train=True)
    with pytest.raises(TypeError, match="FeedForward: expected a floating-point input"):
        FeedForward(F).init(key, jnp.ones((2, D), jnp.int32))
