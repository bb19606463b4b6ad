"""Where the course writes a convention differently from optax/PyTorch, jdl offers both; each
test pins the default and the course's form to their equations (docs/conventions.md).
The optimizers' forms are in tests/optim/test_course_forms.py."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.linear_model import Ridge

import jdl
from jdl import nn, optim, regularizers
from jdl.models import classic

Z = np.array([-2.0, -1e-9, 0.0, 1e-9, 3.0], np.float32)


@pytest.mark.parametrize("value_at_zero", [1.0, 0.0, 0.5])
def test_step_value_at_zero_is_heaviside(value_at_zero):
    kwargs = {} if value_at_zero == 1.0 else {"value_at_zero": value_at_zero}  # 1 is the default
    np.testing.assert_array_equal(nn.step(jnp.asarray(Z), **kwargs), np.heaviside(Z, value_at_zero))


def test_perceptron_outputs_the_course_value_at_the_boundary():
    """ŷ = 1 if wᵀx + b > 0 else 0: on the boundary the course's perceptron says 0 (−1 for ±1
    labels), i.e. step(z, value_at_zero=0), not jdl.nn.step's default 1."""
    params = {"w": jnp.array([1.0, -1.0]), "b": jnp.array(0.0)}
    x = jnp.array([[1.0, 1.0], [2.0, 1.0], [1.0, 2.0]])  # z = 0, 1, −1
    z = x @ params["w"] + params["b"]
    assert classic.perceptron_predict(params, x).tolist() == [0, 1, 0]
    assert classic.perceptron_predict(params, x).tolist() == nn.step(z, value_at_zero=0.0).astype(int).tolist()
    assert classic.perceptron_predict(params, x, labels="pm1").tolist() == [-1, 1, -1]
    assert nn.step(z).tolist() == [1, 1, 0]


@pytest.mark.parametrize("eps_in_sqrt", [True, False])
def test_batchnorm_epsilon_inside_or_outside_the_root(eps_in_sqrt):
    """√(σ² + ε) (paper, PyTorch, flax) or σ̂_B + ε (a course sheet), in training and evaluation."""
    eps = 0.1  # large, so the two forms differ by far more than float32 rounding
    x = (np.random.default_rng(0).normal(size=(6, 3)) * np.array([0.2, 1.0, 3.0]) + 1.0).astype(np.float32)
    layer = nn.BatchNorm(momentum=0.0, eps=eps, eps_in_sqrt=eps_in_sqrt)
    _, state = layer.init(None, x)
    params = {"gamma": jnp.array([1.5, -0.5, 2.0]), "beta": jnp.array([0.1, 0.2, -0.3])}
    mu, var = x.mean(0), x.var(0)
    denom = np.sqrt(var + eps) if eps_in_sqrt else np.sqrt(var) + eps
    expected = np.asarray(params["gamma"]) * (x - mu) / denom + np.asarray(params["beta"])
    y, state = jax.jit(partial(layer.apply, train=True))(params, state, x)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    y_eval, _ = jax.jit(layer.apply)(params, state, x)  # momentum 0: the running stats are this batch's
    np.testing.assert_allclose(y_eval, expected, rtol=1e-5, atol=1e-6)
    other = np.sqrt(var) + eps if eps_in_sqrt else np.sqrt(var + eps)
    assert np.max(np.abs(np.asarray(y) - np.asarray(params["gamma"]) * (x - mu) / other)) > 1e-2


@pytest.fixture(scope="module")
def ridge_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 3))
    return x, x @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.1 * rng.normal(size=20)


def test_ridge_sum_and_course_mean_forms(ridge_data):
    """'sum': min ‖X̃θ − y‖² + λ‖w‖² = sklearn Ridge(alpha=λ); 'mean' (the course):
    min 1/n Σ (θ₀ + xᵀθ − y)² + λ_c‖θ‖², whose gradient is 0 at the closed form, and which is
    the sum form with λ = n·λ_c."""
    x, y = ridge_data
    n, lam_c = len(x), 0.3
    with jax.enable_x64(True):
        summed = classic.normal_equation(jnp.asarray(x), jnp.asarray(y), method="ridge", ridge=lam_c)
        mean = classic.normal_equation(jnp.asarray(x), jnp.asarray(y), method="ridge", ridge=lam_c,
                                       data_term="mean")

        def course_objective(theta):
            return jnp.mean((theta["b"] + x @ theta["w"] - y) ** 2) + lam_c * jnp.sum(theta["w"] ** 2)

        grad = jax.jit(jax.grad(course_objective))(mean)
    for params, alpha in ((summed, lam_c), (mean, n * lam_c)):
        ref = Ridge(alpha=alpha).fit(x, y)
        np.testing.assert_allclose(params["w"], ref.coef_, rtol=1e-10)
        np.testing.assert_allclose(params["b"], ref.intercept_, rtol=1e-10)
    np.testing.assert_allclose(np.concatenate([grad["w"], grad["b"][None]]), 0.0, atol=1e-12)
    assert np.max(np.abs(np.asarray(summed["w"]) - np.asarray(mean["w"]))) > 0.1
    with pytest.raises(ValueError, match="normal_equation: data_term must be 'sum' or 'mean', got 'avg'"):
        classic.normal_equation(jnp.asarray(x), jnp.asarray(y), method="ridge", ridge=1.0, data_term="avg")


def test_l2_without_the_half_is_twice_the_coefficient():
    """The sheets' λ‖w‖² (gradient 2λw) is jdl's λ₂/2·‖w‖² with λ₂ = 2λ, in the loss and the optimizer."""
    lam = 0.3
    params = {"w": jnp.array([[1.0, -2.0], [0.5, 3.0]]), "b": jnp.array([4.0, 5.0])}
    course = lambda p: lam * jnp.sum(p["w"] ** 2)
    ours = regularizers.penalty(l2_coef=2 * lam)
    np.testing.assert_allclose(ours(params), course(params), rtol=1e-6)
    grads = jax.tree.map(jnp.zeros_like, params)
    u, _ = optim.add_l2_penalty(2 * lam, mask=optim.weights_only).update(grads, None, params)
    np.testing.assert_allclose(u["w"], jax.grad(course)(params)["w"], rtol=1e-6)
    np.testing.assert_allclose(u["w"], 2 * lam * params["w"], rtol=1e-6)


def test_weight_sharing_autodiff_sums_and_the_course_averages():
    """w₁ = w₂ = w: jax.grad of the tied weight is ∂l/∂w₁ + ∂l/∂w₂ (the sum over both paths).
    The course's update w ← w − η·½(∂l/∂w₁ + ∂l/∂w₂) is autodiff's step with η/2."""
    x1, x2, y, eta = 0.7, -1.2, 0.4, 0.5
    w = jnp.asarray(0.9)
    untied = lambda w1, w2: (jax.nn.sigmoid(w1 * x1) + jnp.tanh(w2 * x2) - y) ** 2
    tied = lambda w: untied(w, w)
    d1, d2 = jax.grad(untied, argnums=(0, 1))(w, w)
    np.testing.assert_allclose(jax.grad(tied)(w), d1 + d2, rtol=1e-6)
    course = w - eta * 0.5 * (d1 + d2)
    opt = optim.sgd(eta / 2)
    u, _ = opt.update(jax.grad(tied)(w), opt.init(w))
    np.testing.assert_allclose(optim.apply_updates(w, u), course, rtol=1e-6)


def test_convolution_kernel_gradient_is_the_sum_over_positions():
    """A convolution shares its kernel over the P output positions: ∂l/∂K = Σ_p ∂l/∂y_p · patch_p
    (autodiff's sum); the per-position average is that divided by P."""
    rng = np.random.default_rng(0)
    x, k = rng.normal(size=(1, 4, 4, 1)).astype(np.float32), rng.normal(size=(2, 2, 1, 1)).astype(np.float32)
    c = rng.normal(size=(1, 3, 3, 1)).astype(np.float32)  # ∂l/∂y for l = Σ c·y
    grad = jax.jit(jax.grad(lambda k: jnp.sum(c * nn.conv2d(x, k))))(k)
    per_position = [c[0, i, j, 0] * x[0, i:i + 2, j:j + 2, :] for i in range(3) for j in range(3)]
    np.testing.assert_allclose(grad[..., 0], sum(per_position), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad[..., 0] / 9, np.mean(per_position, axis=0), rtol=1e-5, atol=1e-6)
    assert jdl.param_count({"w": k}) == 4  # one kernel however many positions it is applied at
