import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl.autodiff import compare_grads, manual

ACT = {"sigmoid": jdl.nn.sigmoid, "tanh": jdl.nn.tanh, "relu": jdl.nn.relu}
LOSSES = {"mse": jdl.losses.mse, "sigmoid_bce": jdl.losses.sigmoid_binary_cross_entropy,
          "softmax_ce": jdl.losses.softmax_cross_entropy}


@pytest.mark.parametrize("loss", ["mse", "sigmoid_bce", "softmax_ce"])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_manual_backprop_equals_jax_grad_on_a_jdl_mlp(activation, loss):
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.normal(size=(5, 3)))
        model = jdl.models.mlp([6, 4, 3], activation=ACT[activation])
        params, state = model.init(jax.random.key(0), x)
        y = jax.nn.one_hot(jnp.arange(5) % 3, 3, dtype=jnp.float64)
        if loss != "softmax_ce":
            y = jnp.asarray(rng.uniform(size=(5, 3)))

        def objective(p):
            return LOSSES[loss](model.apply(p, state, x)[0], y)

        value, grads = manual.loss_and_grads(manual.dense_layers(params), x, y, activation, loss)
        auto = jax.grad(objective)(params)
        errors = compare_grads(grads, manual.dense_layers(auto))
        np.testing.assert_allclose(value, objective(params), rtol=1e-12)
    assert max(errors.values()) < 1e-9, jdl.autodiff.grad_report(errors, 1e-9)


def test_worked_example_two_layer_sigmoid_network():
    # the course: ∂l/∂w11^(1) = (ŷ − y)·w11^(2)·a11(1 − a11)·x1 (sigmoid hidden and output, BCE)
    with jax.enable_x64(True):
        w1, b1 = jnp.array([[0.3, -0.2], [0.5, 0.1]]), jnp.array([0.1, -0.3])
        w2, b2 = jnp.array([[0.7], [-0.4]]), jnp.array([0.2])
        x, y = jnp.array([[1.5, -0.5]]), jnp.array([[1.0]])
        layers = [{"w": w1, "b": b1}, {"w": w2, "b": b2}]
        _, grads = manual.loss_and_grads(layers, x, y, "sigmoid", "sigmoid_bce")
        a = jax.nn.sigmoid(x @ w1 + b1[None])[0]
        y_hat = jax.nn.sigmoid(a @ w2 + b2)[0]
        expected = (y_hat - 1.0) * w2[0, 0] * a[0] * (1 - a[0]) * x[0, 0]
        np.testing.assert_allclose(grads[0]["w"][0, 0], expected, rtol=1e-12)
        np.testing.assert_allclose(grads[1]["w"][0, 0], (y_hat - 1.0) * a[0], rtol=1e-12)  # (ŷ − y)·a


def test_worked_example_autograd_relu_network():
    # the course: h = ReLU(W_n x + b_n), o = W_o h + b_o, L = (y − o)²
    with jax.enable_x64(True):
        rng = np.random.default_rng(1)
        layers = [{"w": jnp.asarray(rng.normal(size=(3, 4))), "b": jnp.asarray(rng.normal(size=4))},
                  {"w": jnp.asarray(rng.normal(size=(4, 1))), "b": jnp.asarray(rng.normal(size=1))}]
        x, y = jnp.asarray(rng.normal(size=(1, 3))), jnp.array([[0.5]])

        def loss(ls):
            z = x @ ls[0]["w"] + ls[0]["b"][None]
            h = jnp.where(z > 0, z, 0)
            return jnp.sum((y - (h @ ls[1]["w"] + ls[1]["b"][None])) ** 2)

        _, grads = manual.loss_and_grads(layers, x, y, "relu", "mse")
        errors = compare_grads(grads, jax.grad(loss)(layers))
    assert max(errors.values()) < 1e-12


def test_manual_backprop_rejects_unknown_names_and_shapes():
    layers = [{"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}]
    with pytest.raises(ValueError, match="activation must be one of"):
        manual.forward(layers, jnp.ones((1, 3)), "gelu")
    with pytest.raises(ValueError, match="loss must be"):
        manual.output_delta(jnp.ones((1, 2)), jnp.ones((1, 2)), "hinge")
    with pytest.raises(ValueError, match="layer 0 expects d_in=3"):
        manual.forward(layers, jnp.ones((1, 4)))
