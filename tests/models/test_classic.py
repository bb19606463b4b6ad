import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl.autodiff import compare_grads
from jdl.models import classic

X01 = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
TRUTH = {"and": [0, 0, 0, 1], "or": [0, 1, 1, 1], "xor": [0, 1, 1, 0]}


@pytest.mark.parametrize("gate", ["and", "or"])
def test_mcculloch_pitts_and_or(gate):
    np.testing.assert_array_equal(classic.logic_gate(gate, X01), TRUTH[gate])


def test_mcculloch_pitts_not_and_unknown_gate():
    np.testing.assert_array_equal(classic.logic_gate("not", np.array([[0.0], [1.0]])), [1, 0])
    with pytest.raises(ValueError, match="unknown gate 'xor'"):
        classic.logic_gate("xor", X01)
    with pytest.raises(ValueError, match="mcculloch_pitts"):
        classic.mcculloch_pitts(X01, jnp.ones(3), 1.0)


def test_no_threshold_unit_with_pm1_weights_computes_xor():
    # the course: "can represent AND, OR, NOT — but not XOR"
    for w in [(a, b) for a in (-1, 1) for b in (-1, 1)]:
        for theta in np.arange(-3, 3.5, 0.5):
            out = classic.mcculloch_pitts(X01, jnp.asarray(w), theta)
            assert list(np.asarray(out)) != TRUTH["xor"]


@pytest.mark.parametrize("gate", ["and", "or"])
@pytest.mark.parametrize("labels", ["01", "pm1"])
def test_perceptron_learns_and_or(gate, labels):
    y = np.array(TRUTH[gate])
    if labels == "pm1":
        y = 2 * y - 1
    params, mistakes = classic.perceptron_train(X01, y, epochs=20, labels=labels)
    pred = classic.perceptron_predict(params, X01, labels=labels)
    assert float(jnp.mean(pred == y)) == 1.0
    assert int(mistakes[-1]) == 0


def test_perceptron_with_shuffled_examples_learns_and_not_xor():
    for gate, converges in [("and", True), ("xor", False)]:
        y = np.array(TRUTH[gate])
        params, mistakes = classic.perceptron_train(X01, y, epochs=30, key=jax.random.key(3))
        assert (int(mistakes[-1]) == 0) == converges
        assert (float(jnp.mean(classic.perceptron_predict(params, X01) == y)) == 1.0) == converges


def test_perceptron_never_fits_xor():
    y = np.array(TRUTH["xor"])
    params, mistakes = classic.perceptron_train(X01, y, epochs=100)
    acc = float(jnp.mean(classic.perceptron_predict(params, X01) == y))
    assert acc < 1.0
    assert int(jnp.min(mistakes)) > 0  # not one epoch without a mistake: it never converges


def test_perceptron_rule_by_hand():
    # w = 0, b = 0: predicts 0 on x = (1, 1), y = 1 → err = 1, w ← (1, 1), b ← 1
    p0 = {"w": jnp.zeros(2), "b": jnp.zeros(())}
    p1, mistake = classic.perceptron_update(p0, jnp.array([1.0, 1.0]), jnp.array(1.0))
    np.testing.assert_array_equal(p1["w"], [1, 1])
    assert float(p1["b"]) == 1 and int(mistake) == 1
    p2, mistake = classic.perceptron_update(p1, jnp.array([1.0, 1.0]), jnp.array(1.0))
    assert int(mistake) == 0 and float(p2["b"]) == 1


def test_perceptron_rejects_bad_labels():
    with pytest.raises(ValueError, match=r"labels must be in \{0, 1\}.*got \[2\]"):
        classic.perceptron_train(X01, np.array([0, 1, 2, 1]))
    with pytest.raises(ValueError, match="use labels='pm1'"):
        classic.perceptron_train(X01, np.array([-1, 1, 1, 1]))
    with pytest.raises(ValueError, match=r"\{1, -1\}|\{-1, 1\}"):
        classic.perceptron_train(X01, np.array([0, 1, 1, 1]), labels="pm1")


def test_mlp_with_one_hidden_layer_learns_xor():
    model = jdl.models.mlp([8, 2], activation=jdl.nn.tanh)
    ts = jdl.train.init_train_state(model, jdl.optim.sgd(0.5), X01, seed=0)
    step = jdl.train.make_step(jdl.train.supervised(model, jdl.losses.softmax_cross_entropy), jdl.optim.sgd(0.5))
    y = jnp.asarray(TRUTH["xor"], jnp.int32)
    for _ in range(300):
        ts, metrics = step(ts, (jnp.asarray(X01), y))
    logits, _ = model.apply(ts.params, ts.state, X01)
    assert float(jnp.mean(jnp.argmax(logits, -1) == y)) == 1.0


@pytest.fixture(scope="module")
def regression_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4))
    y = x @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.7 + 0.1 * rng.normal(size=30)
    return x, y


def test_normal_equation_matches_lstsq(regression_data):
    x, y = regression_data
    with jax.enable_x64(True):
        params = classic.normal_equation(jnp.asarray(x), jnp.asarray(y))
    theta, *_ = np.linalg.lstsq(np.c_[x, np.ones(len(x))], y, rcond=None)
    np.testing.assert_allclose(params["w"], theta[:-1], rtol=1e-10)
    np.testing.assert_allclose(params["b"], theta[-1], rtol=1e-10)


def test_normal_equation_singular_says_so_and_offers_pinv_and_ridge(regression_data):
    x, y = regression_data
    x_bad = np.c_[x, 2 * x[:, 0]]  # a collinear column
    with pytest.raises(ValueError, match=r"singular: X has rank 5 < 6.*method='pinv'.*method='ridge'"):
        classic.normal_equation(x_bad, y)
    with jax.enable_x64(True):
        pinv = classic.normal_equation(jnp.asarray(x_bad), jnp.asarray(y), method="pinv")
        ridge = classic.normal_equation(jnp.asarray(x_bad), jnp.asarray(y), method="ridge", ridge=1e-8)
    theta, *_ = np.linalg.lstsq(np.c_[x_bad, np.ones(len(x))], y, rcond=None)  # minimum norm
    np.testing.assert_allclose(pinv["w"], theta[:-1], rtol=1e-8)
    np.testing.assert_allclose(ridge["w"], theta[:-1], rtol=1e-4)
    with pytest.raises(ValueError, match="ridge=λ > 0"):
        classic.normal_equation(x, y, method="ridge")


def test_linear_regression_by_gradient_descent_reaches_the_normal_equation(regression_data):
    x, y = map(jnp.asarray, regression_data)
    x, y = x.astype(jnp.float32), y.astype(jnp.float32)
    params, losses = classic.gradient_descent(classic.linear_regression_loss, classic.linear_regression_grad,
                                              classic.init_regression(4), x, y, 0.3, 300)
    exact = classic.normal_equation(x, y)
    np.testing.assert_allclose(params["w"], exact["w"], atol=1e-4)
    assert losses[-1] < losses[0] / 100


def _rand_params(k=None, seed=1):
    rng = np.random.default_rng(seed)
    shape = (4,) if k is None else (4, k)
    return {"w": jnp.asarray(rng.normal(size=shape)), "b": jnp.asarray(rng.normal(size=shape[1:]))}


@pytest.mark.parametrize("name", ["linear_regression", "logistic_regression", "softmax_regression"])
def test_hand_derived_gradients_equal_jax_grad(name, regression_data):
    x, y = regression_data
    loss, grad = getattr(classic, name + "_loss"), getattr(classic, name + "_grad")
    with jax.enable_x64(True):
        x = jnp.asarray(x)
        if name == "linear_regression":
            params, t = _rand_params(), jnp.asarray(y)
        elif name == "logistic_regression":
            params, t = _rand_params(), jnp.asarray(y > 0.7, jnp.float64)
        else:
            params, t = _rand_params(3), jnp.asarray(np.digitize(y, [-1, 2]), jnp.int32)
        errors = compare_grads(grad(params, x, t), jax.grad(loss)(params, x, t))
        if name == "softmax_regression":  # one-hot labels give the same gradient
            errors_1h = compare_grads(grad(params, x, jax.nn.one_hot(t, 3)), jax.grad(loss)(params, x, t))
            assert max(errors_1h.values()) < 1e-12
    assert max(errors.values()) < 1e-12, errors


def test_bce_worked_example_sigmoid_at_2_label_1():
    # the course's quiz: ŷ = σ(z), z = 2, y = 1 → ∂ℓ/∂z = σ(2) − 1
    params = {"w": jnp.array([2.0]), "b": jnp.array(0.0)}
    x, y = jnp.array([[1.0]]), jnp.array([1.0])
    g = classic.logistic_regression_grad(params, x, y)
    expected = float(jax.nn.sigmoid(2.0)) - 1
    np.testing.assert_allclose(g["b"], expected, rtol=1e-5)
    np.testing.assert_allclose(jax.grad(classic.logistic_regression_loss)(params, x, y)["b"], expected, rtol=1e-5)


def test_logistic_and_softmax_regression_learn_a_separable_problem():
    x, y = jdl.data.load("moons", "train")
    x, y = jnp.asarray(x), jnp.asarray(y)
    p, losses = classic.gradient_descent(classic.logistic_regression_loss, classic.logistic_regression_grad,
                                         classic.init_regression(2), x, y.astype(jnp.float32), 1.0, 300)
    acc = float(jnp.mean((classic.logistic_regression(p, x) > 0.5) == y))
    ps, _ = classic.gradient_descent(classic.softmax_regression_loss, classic.softmax_regression_grad,
                                     classic.init_regression(2, 2), x, y, 1.0, 300)
    acc_s = float(jnp.mean(jnp.argmax(classic.softmax_regression(ps, x), -1) == y))
    assert 0.8 < acc < 0.95 and abs(acc - acc_s) < 0.02  # linear: good, not perfect on moons
    assert losses[-1] < losses[0]


def test_regression_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"normal_equation: expected x \(N, d_in\)"):
        classic.normal_equation(np.ones(5), np.ones(5))
    with pytest.raises(ValueError, match="perceptron_train: expected x"):
        classic.perceptron_train(X01, np.ones(3))
