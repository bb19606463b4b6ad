"""The course's remaining worked examples, each through jdl's public API with the course's answer.
(The others live beside their modules: tests/nn/test_conv.py, tests/test_summary.py, ...)"""

import jax
import jax.numpy as jnp
import numpy as np

import jdl
from jdl import losses, optim
from jdl.models import classic
from jdl.nn import Conv2D, Dense, Flatten, conv2d, conv2d_im2col, serial, softmax


def test_convolution_with_stride_3_2_and_padding_1():
    """The course's 3×3 input 0..8, kernel [[0, 1], [2, 3]], padding 1, strides 3 (rows) and 2
    (columns): 0·0 + 0·1 + 1·2 + 2·3 = 8 and 0·0 + 6·1 + 0·2 + 0·3 = 6 → [[0, 8], [6, 8]]."""
    x = jnp.arange(9.0).reshape(1, 3, 3, 1)
    k = jnp.array([[0.0, 1.0], [2.0, 3.0]]).reshape(2, 2, 1, 1)
    for fn in (conv2d, conv2d_im2col):
        assert fn(x, k, stride=(3, 2), padding=1)[0, :, :, 0].tolist() == [[0, 8], [6, 8]]
    layer = Conv2D(1, 2, stride=(3, 2), padding=1, use_bias=False)
    y, _ = layer.apply({"w": k}, {}, x)
    assert y[0, :, :, 0].tolist() == [[0, 8], [6, 8]]
    # the output size ⌊(n_h − k_h + p_h + s_h)/s_h⌋ × ⌊(n_w − k_w + p_w + s_w)/s_w⌋, p the total padding
    assert y.shape[1:3] == ((3 - 2 + 2 + 3) // 3, (3 - 2 + 2 + 2) // 2) == (2, 2)


def _dense_params(d_in, d_out):
    """The params a Dense layer would have on a flattened input of d_in, shapes only."""
    x = jax.ShapeDtypeStruct((1, d_in), jnp.float32)
    return jax.eval_shape(Dense(d_out).init, jax.random.key(0), x)[0]


def test_a_200x200_rgb_image_gives_120000_weights_per_neuron():
    params = _dense_params(3 * 200 * 200, 1)
    assert params["w"].shape == (120_000, 1)
    assert jdl.param_count(params) == 120_000 + 1  # the weights of one neuron and its bias


def test_a_12_megapixel_image_into_100_units_is_3_6_billion_parameters():
    """36M floats in an RGB image (12 MP, 3000×4000×3), × 100 hidden units ≈ 3.6B parameters."""
    x = jax.ShapeDtypeStruct((1, 3000, 4000, 3), jnp.float32)
    assert np.prod(x.shape[1:]) == 36_000_000
    table = jdl.summary(serial(Flatten(), Dense(100)), x)  # shapes only: nothing is allocated
    assert "3,600,000,100" in table.splitlines()[-1]  # 36M × 100 weights + 100 biases


def test_cross_entropy_is_the_product_of_per_class_bernoulli_likelihoods():
    """Target (0, 1, 0, 0), output ŷ: the likelihood (1 − ŷ₀)·ŷ₁·(1 − ŷ₂)·(1 − ŷ₃), and the loss
    −log of it = Σ_k −[y_k log ŷ_k + (1 − y_k) log(1 − ŷ_k)]: binary cross-entropy summed over
    the classes. Softmax cross-entropy keeps the y₁ factor alone: −log ŷ₁."""
    y = jnp.array([0.0, 1.0, 0.0, 0.0])
    y_hat = softmax(jnp.array([0.5, 2.0, -1.0, 0.3]))
    p = np.asarray(y_hat, np.float64)
    likelihood = (1 - p[0]) * p[1] * (1 - p[2]) * (1 - p[3])
    np.testing.assert_allclose(losses.binary_cross_entropy(y_hat, y, reduction="sum"), -np.log(likelihood), rtol=1e-6)
    logits = jnp.log(y_hat)
    np.testing.assert_allclose(losses.softmax_cross_entropy(logits[None], y[None]), -np.log(p[1]), rtol=1e-6)
    np.testing.assert_allclose(losses.softmax_cross_entropy(logits[None], jnp.array([1])), -np.log(p[1]), rtol=1e-6)


def test_the_perceptron_weight_vector_is_perpendicular_to_its_boundary():
    """wᵀx + b = 0 on the boundary, so for two boundary points wᵀ(p − q) = 0: cos θ = 0, 90°;
    and a step along w crosses from ŷ = 0 to ŷ = 1."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2))
    y = (x @ np.array([2.0, -1.0]) + 0.5 > 0).astype(np.float32)
    x = x + 0.3 * np.where(y[:, None] > 0, 1, -1) * np.array([2.0, -1.0]) / np.sqrt(5)  # a margin
    params, mistakes = classic.perceptron_train(x, y, epochs=50)
    assert int(mistakes[-1]) == 0
    w, b = np.asarray(params["w"], np.float64), float(params["b"])
    t = np.array([-w[1], w[0]])  # along the boundary
    p = -b * w / (w @ w)  # the boundary point nearest the origin
    q = p + 3.0 * t
    np.testing.assert_allclose([w @ p + b, w @ q + b], 0.0, atol=1e-9)
    np.testing.assert_allclose(w @ (q - p) / (np.linalg.norm(w) * np.linalg.norm(q - p)), 0.0, atol=1e-12)
    side = classic.perceptron_predict(params, jnp.asarray(np.stack([p - 0.1 * w, p + 0.1 * w]), jnp.float32))
    assert side.tolist() == [0, 1]


def test_online_sgd_for_logistic_regression():
    """The slide's stochastic gradient descent: w = 0, b = 0; for every epoch, for every example,
    ŷ = σ(xᵀw + b), w ← w + η(y − ŷ)x, b ← b + η(y − ŷ). jdl: ``logistic_regression_grad`` on a
    batch of one and ``optim.sgd`` under one scan, equal to the loop in float64."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(12, 2)).astype(np.float32)
    y = (x[:, 0] - x[:, 1] > 0).astype(np.float32)
    eta, epochs = 0.5, 4

    w, b = np.zeros(2), 0.0
    for _ in range(epochs):
        for xi, yi in zip(x.astype(np.float64), y):
            y_hat = 1 / (1 + np.exp(-(xi @ w + b)))
            w, b = w + eta * (yi - y_hat) * xi, b + eta * (yi - y_hat)

    opt = optim.sgd(eta)

    @jax.jit
    def online(params):
        def one_example(carry, xy):
            p, s = carry
            g = classic.logistic_regression_grad(p, xy[0][None], xy[1][None])  # a batch of one
            u, s = opt.update(g, s, p)
            return (optim.apply_updates(p, u), s), None

        def one_epoch(carry, _):
            return jax.lax.scan(one_example, carry, (x, y))[0], None

        return jax.lax.scan(one_epoch, (params, opt.init(params)), None, length=epochs)[0][0]

    params = online(classic.init_regression(2))
    np.testing.assert_allclose(params["w"], w, rtol=1e-5)
    np.testing.assert_allclose(params["b"], b, rtol=1e-5, atol=1e-6)
    assert float(jnp.mean((classic.logistic_regression(params, x) > 0.5) == y)) >= 0.9
