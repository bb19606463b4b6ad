"""Weight standardization: Ŵ = (W − μ_o)/√(σ²_o + ε) over each output channel's fan-in, checked
against the paper's equation in float64 and against PyTorch's conv2d with the weight
standardized in PyTorch (value and gradient)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.nn import Conv2D, Dense, WeightStandardized, as_module, relu, standardize_weight


def test_standardize_weight_equals_the_equation(key):
    w = np.random.default_rng(0).normal(size=(3, 3, 4, 5)).astype(np.float32) * 2.0 + 0.7  # HWIO
    eps = 1e-5
    fan_in = w.reshape(-1, 5).astype(np.float64)  # (I = 3·3·4, O)
    expected = (fan_in - fan_in.mean(0)) / np.sqrt(fan_in.var(0) + eps)
    got = np.asarray(jax.jit(standardize_weight, static_argnums=1)(jnp.asarray(w), eps)).reshape(-1, 5)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.mean(0), 0.0, atol=1e-6)
    np.testing.assert_allclose(got.var(0), 36 * fan_in.var(0) / (36 * fan_in.var(0) + 36 * eps), rtol=1e-5)


@pytest.mark.torch
def test_weight_standardized_conv_equals_torch(key):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(2, 6, 6, 3)), jnp.float32)
    layer = WeightStandardized(Conv2D(4, 3, padding=1))
    params, state = layer.init(jax.random.key(1), x)
    params = {**params, "b": jnp.arange(4.0) / 10}
    r = jnp.asarray(rng.normal(size=(2, 6, 6, 4)), jnp.float32)  # a cotangent: L = Σ y·r

    def loss(p):
        y, _ = layer.apply(p, state, x)
        return jnp.sum(y * r), y

    (_, y), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)

    w_t = torch.tensor(np.asarray(params["w"]).transpose(3, 2, 0, 1), dtype=torch.float64, requires_grad=True)  # OIHW
    flat = w_t.reshape(4, -1)
    mean = flat.mean(dim=1, keepdim=True)
    var = flat.var(dim=1, unbiased=False, keepdim=True)
    w_hat = ((flat - mean) / torch.sqrt(var + 1e-5)).reshape(w_t.shape)
    x_t = torch.tensor(np.asarray(x).transpose(0, 3, 1, 2), dtype=torch.float64)
    y_t = torch.nn.functional.conv2d(x_t, w_hat, torch.tensor(np.asarray(params["b"]), dtype=torch.float64), padding=1)
    (y_t * torch.tensor(np.asarray(r).transpose(0, 3, 1, 2), dtype=torch.float64)).sum().backward()

    np.testing.assert_allclose(np.asarray(y), y_t.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(grads["w"]), w_t.grad.numpy().transpose(2, 3, 1, 0), rtol=1e-4, atol=1e-5)


def test_weight_standardized_keeps_params_and_refuses_a_weightless_layer(key):
    x = jnp.ones((2, 3))
    plain, _ = Dense(4).init(key, x)
    params, _ = WeightStandardized(Dense(4)).init(key, x)
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, plain)
    with pytest.raises(ValueError, match="WeightStandardized: the layer 'relu' has no weight 'w'"):
        WeightStandardized(as_module(relu)).init(key, x)
    with pytest.raises(ValueError, match="standardize_weight: expected a weight"):
        standardize_weight(jnp.ones(3))
