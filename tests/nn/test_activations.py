import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl import nn
from tests.helpers import assert_init_shapes

Z = np.array([-3.0, -1.0, -0.25, 0.3, 1.0, 2.5])

REFERENCES = {  # jdl function -> independent reference (jax.nn / flax / closed form)
    nn.sigmoid: lambda z: 1 / (1 + np.exp(-z)),
    nn.tanh: np.tanh,
    nn.relu: lambda z: np.maximum(z, 0),
    nn.leaky_relu: lambda z: np.where(z >= 0, z, 0.01 * z),
    nn.elu: lambda z: np.where(z > 0, z, np.expm1(z)),
    nn.gelu: lambda z: np.asarray(fnn.gelu(z, approximate=False)),
    nn.softmax: lambda z: np.exp(z) / np.exp(z).sum(),
    nn.log_softmax: lambda z: z - np.log(np.exp(z).sum()),
}


@pytest.mark.parametrize("fn", list(REFERENCES), ids=lambda f: f.__name__)
def test_activation_values(fn):
    np.testing.assert_allclose(fn(jnp.asarray(Z, jnp.float32)), REFERENCES[fn](Z), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fn", [nn.sigmoid, nn.tanh, nn.relu, nn.leaky_relu, nn.elu, nn.gelu,
                                nn.softmax, nn.log_softmax], ids=lambda f: f.__name__)
def test_activation_gradient_matches_finite_differences(fn):
    weights = np.linspace(0.5, 1.5, Z.size)
    with jax.enable_x64(True):
        errors = jdl.autodiff.check_grads(lambda z: jnp.sum(weights * fn(z)), jnp.asarray(Z))
    assert max(errors.values()) < 1e-7


def test_derivatives_of_the_course():
    z = jnp.asarray(Z, jnp.float32)
    s = nn.sigmoid(z)
    np.testing.assert_allclose(jax.vmap(jax.grad(nn.sigmoid))(z), s * (1 - s), rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(jax.grad(nn.tanh))(z), 1 - jnp.tanh(z) ** 2, rtol=1e-5)
    np.testing.assert_array_equal(jax.vmap(jax.grad(nn.relu))(z), (Z > 0).astype(np.float32))


def test_step():
    np.testing.assert_array_equal(nn.step(jnp.array([-2.0, -1e-9, 0.0, 3.0])), [0, 0, 1, 1])


def test_softmax_stable_for_huge_logits():
    z = jnp.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]])
    np.testing.assert_allclose(nn.softmax(z), [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-7)
    ls = nn.log_softmax(z)
    assert bool(jnp.all(jnp.isfinite(ls)))
    np.testing.assert_allclose(ls, jax.nn.log_softmax(z), rtol=1e-6)


def test_prelu_module(key):
    layer = nn.PReLU()
    params, state, y = assert_init_shapes(layer, jnp.asarray(Z, jnp.float32)[None], key)
    assert params["alpha"].shape == () and float(params["alpha"]) == 0.25
    np.testing.assert_allclose(y[0], np.where(Z >= 0, Z, 0.25 * Z), rtol=1e-6)
    dalpha = jax.grad(lambda p: jnp.sum(layer.apply(p, {}, jnp.asarray(Z, jnp.float32))[0]))(params)
    np.testing.assert_allclose(dalpha["alpha"], np.minimum(Z, 0).sum(), rtol=1e-6)
    p_ch, _ = nn.PReLU(per_channel=True).init(key, jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="PReLU: .* has C=4 but the layer was initialized with C=3"):
        nn.PReLU(per_channel=True).apply(p_ch, {}, jnp.ones((2, 4)))


@pytest.mark.torch
def test_prelu_equals_torch():
    torch = pytest.importorskip("torch")
    ref = torch.nn.PReLU(init=0.3)(torch.tensor(Z, dtype=torch.float32)).detach().numpy()
    y, _ = nn.PReLU(0.3).apply({"alpha": jnp.float32(0.3)}, {}, jnp.asarray(Z, jnp.float32))
    np.testing.assert_allclose(y, ref, rtol=1e-6)


def test_relu_gradient_at_zero_is_zero_as_in_the_course():
    # the course: dReLU/dx = 1 if x > 0, 0 if x <= 0 (PyTorch agrees); jnp.maximum gives 1/2
    z = jnp.array([-1.0, 0.0, 0.0, 2.0])
    np.testing.assert_array_equal(jax.vmap(jax.grad(nn.relu))(z), [0.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(nn.relu(z), [0.0, 0.0, 0.0, 2.0])
    assert nn.relu(jnp.zeros(3, jnp.bfloat16)).dtype == jnp.bfloat16
