"""BatchNorm's backward pass written by hand (∂l/∂β, ∂l/∂γ, and ∂l/∂x through μ and σ²) equals
jax.grad through jdl.nn.BatchNorm in training mode, line by line, in float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl import nn
from jdl.autodiff.batchnorm import batchnorm_backward, batchnorm_forward

EPS = 1e-3


def _loss_of_y(y, c):
    return jnp.sum(c * jnp.sin(y))  # a loss whose ∂l/∂y varies with y


@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 3, 2)], ids=["dense", "spatial"])
def test_hand_backward_equals_jax_grad(shape):
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        x = jnp.asarray(rng.normal(size=shape) * 2 + 1)
        c = jnp.asarray(rng.normal(size=shape))
        gamma, beta = jnp.asarray(rng.normal(size=shape[-1:])), jnp.asarray(rng.normal(size=shape[-1:]))
        layer = nn.BatchNorm(eps=EPS)
        _, state = layer.init(None, x)

        def loss(x, gamma, beta):
            y, _ = layer.apply({"gamma": gamma, "beta": beta}, state, x, train=True)
            return _loss_of_y(y, c)

        @jax.jit
        def both(x, gamma, beta):
            y, cache = batchnorm_forward(x, gamma, beta, EPS)
            dy = jax.grad(_loss_of_y)(y, c)
            mu, var = cache["mu"], cache["var"]  # (1, …, 1, C)
            g, b = cache["gamma"], beta.reshape(mu.shape)
            auto = jax.grad(loss, argnums=(0, 1, 2))(x, gamma, beta)
            # the intermediate derivatives, each as the gradient of l with the others held as the
            # forward pass computes them: ∂l/∂x̂ at fixed x̂; ∂l/∂σ² at fixed x, μ; ∂l/∂μ with σ²(μ)
            via_x_hat = jax.grad(lambda xh: _loss_of_y(g * xh + b, c))(cache["x_hat"])
            via_var = jax.grad(lambda v: _loss_of_y(g * (x - mu) / jnp.sqrt(v + EPS) + b, c))(var)
            axes = tuple(range(x.ndim - 1))
            via_mu = jax.grad(lambda m: _loss_of_y(
                g * (x - m) / jnp.sqrt(jnp.mean((x - m) ** 2, axis=axes, keepdims=True) + EPS) + b, c))(mu)
            y_layer, _ = layer.apply({"gamma": gamma, "beta": beta}, state, x, train=True)
            return y, y_layer, batchnorm_backward(dy, cache), auto, via_x_hat, via_var, via_mu

        y, y_layer, hand, auto, via_x_hat, via_var, via_mu = both(x, gamma, beta)
    np.testing.assert_allclose(y, y_layer, rtol=1e-12)
    for name, ref in zip(("x", "gamma", "beta"), auto):
        np.testing.assert_allclose(hand[name], ref, rtol=1e-10, atol=1e-12, err_msg=name)
    for name, ref in (("x_hat", via_x_hat), ("var", via_var), ("mu", via_mu)):
        np.testing.assert_allclose(hand[name], np.reshape(ref, np.shape(hand[name])), rtol=1e-10, atol=1e-12,
                                   err_msg=name)
    # ∂l/∂x is not ∂l/∂x̂/√(σ² + ε) alone: the paths through μ and σ² matter
    axes = tuple(range(x.ndim - 1))
    direct = np.asarray(hand["x_hat"]) / np.sqrt(np.var(np.asarray(x), axis=axes, keepdims=True) + EPS)
    assert np.max(np.abs(np.asarray(hand["x"]) - direct)) > 1e-2


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"batchnorm_forward: expected x \(N, ..., C\) and gamma \(C,\)"):
        batchnorm_forward(jnp.ones((4, 3)), jnp.ones(2), jnp.zeros(2))
