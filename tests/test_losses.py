import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jdl
from jdl import losses

rng = np.random.default_rng(0)
LOGITS = jnp.asarray(rng.normal(size=(6, 5)) * 3, jnp.float32)
LABELS = jnp.asarray(rng.integers(0, 5, size=6), jnp.int32)
Z = jnp.asarray(rng.normal(size=(7,)) * 3, jnp.float32)
T = jnp.asarray(rng.uniform(size=(7,)), jnp.float32)


def test_mse_equals_optax():
    pred, target = LOGITS, LOGITS[::-1]
    np.testing.assert_allclose(losses.mse(pred, target), jnp.mean(optax.squared_error(pred, target)), rtol=1e-6)
    np.testing.assert_allclose(losses.mse(pred, target, reduction="sum"), jnp.sum((pred - target) ** 2), rtol=1e-6)


def test_softmax_cross_entropy_equals_optax_integer_and_one_hot():
    ref = optax.softmax_cross_entropy_with_integer_labels(LOGITS, LABELS).mean()
    np.testing.assert_allclose(losses.softmax_cross_entropy(LOGITS, LABELS), ref, rtol=1e-6)
    one_hot = jax.nn.one_hot(LABELS, 5)
    np.testing.assert_allclose(losses.softmax_cross_entropy(LOGITS, one_hot), ref, rtol=1e-6)


def test_softmax_cross_entropy_huge_logits_equals_optax():
    logits = LOGITS * 1e4 / 3
    ours = losses.softmax_cross_entropy(logits, LABELS, reduction="none")
    ref = optax.softmax_cross_entropy_with_integer_labels(logits, LABELS)
    assert bool(jnp.all(jnp.isfinite(ours)))
    np.testing.assert_allclose(ours, ref, rtol=1e-5)


def test_label_smoothing_equals_optax():
    one_hot = jax.nn.one_hot(LABELS, 5)
    ref = optax.softmax_cross_entropy(LOGITS, optax.smooth_labels(one_hot, 0.1)).mean()
    np.testing.assert_allclose(losses.softmax_cross_entropy(LOGITS, LABELS, label_smoothing=0.1), ref, rtol=1e-6)


def test_sigmoid_bce_equals_optax_including_1e4():
    for z in (Z, Z * 1e4 / 3):
        ours = losses.sigmoid_binary_cross_entropy(z, T, reduction="none")
        assert bool(jnp.all(jnp.isfinite(ours)))
        np.testing.assert_allclose(ours, optax.sigmoid_binary_cross_entropy(z, T), rtol=1e-5, atol=1e-6)


def test_bce_on_probabilities_equals_logit_form():
    p = jax.nn.sigmoid(Z)
    np.testing.assert_allclose(losses.binary_cross_entropy(p, T), losses.sigmoid_binary_cross_entropy(Z, T), rtol=1e-4)


def test_worked_example_bce_gradient_at_z2():
    """The course: BCE on a sigmoid output at z = 2, y = 1 has dℓ/dz = ŷ − y = σ(2) − 1."""
    g = jax.grad(lambda z: losses.sigmoid_binary_cross_entropy(z, jnp.float32(1.0)))(jnp.float32(2.0))
    np.testing.assert_allclose(g, 1 / (1 + np.exp(-2.0)) - 1, rtol=1e-6)
    g2 = jax.grad(lambda z: losses.binary_cross_entropy(jax.nn.sigmoid(z), jnp.float32(1.0)))(jnp.float32(2.0))
    np.testing.assert_allclose(g2, 1 / (1 + np.exp(-2.0)) - 1, rtol=1e-5)


def test_softmax_gradient_is_softmax_minus_y():
    g = jax.grad(lambda z: losses.softmax_cross_entropy(z, LABELS, reduction="sum"))(LOGITS)
    np.testing.assert_allclose(g, jax.nn.softmax(LOGITS) - jax.nn.one_hot(LABELS, 5), atol=1e-6)


@pytest.mark.parametrize("loss", ["mse", "bce", "sigmoid_bce", "softmax_ce", "softmax_ce_onehot"])
def test_gradients_match_finite_differences(loss):
    with jax.enable_x64(True):
        z = jnp.asarray(np.asarray(LOGITS), jnp.float64)
        y = jnp.asarray(rng.uniform(size=z.shape))
        fn = {
            "mse": lambda z: losses.mse(z, y),
            "bce": lambda z: losses.binary_cross_entropy(jax.nn.sigmoid(z), y),
            "sigmoid_bce": lambda z: losses.sigmoid_binary_cross_entropy(z, y),
            "softmax_ce": lambda z: losses.softmax_cross_entropy(z, LABELS),
            "softmax_ce_onehot": lambda z: losses.softmax_cross_entropy(z, y / y.sum(-1, keepdims=True)),
        }[loss]
        errors = jdl.autodiff.check_grads(fn, z)
    assert max(errors.values()) < 1e-7, errors


def test_mismatched_shapes_raise_at_trace_time():
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: integer labels must have shape \(6,\)"):
        jax.jit(losses.softmax_cross_entropy)(LOGITS, LABELS[:4])
    with pytest.raises(ValueError, match="one-hot labels must have the logits' shape"):
        losses.softmax_cross_entropy(LOGITS, jnp.ones((6, 4)))
    with pytest.raises(ValueError, match=r"mse: predictions have shape \(6, 5\) but targets have shape \(6,\)"):
        jax.jit(losses.mse)(LOGITS, LOGITS[:, 0])
    with pytest.raises(ValueError, match="sigmoid_binary_cross_entropy: predictions have shape"):
        losses.sigmoid_binary_cross_entropy(Z, T[:3])
    with pytest.raises(ValueError, match="reduction must be one of"):
        losses.mse(Z, Z, reduction="avg")


def test_accuracy():
    logits = jnp.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert float(jdl.metrics.accuracy(logits, jnp.array([1, 0, 0]))) == pytest.approx(2 / 3)
    assert float(jdl.metrics.accuracy(logits, jnp.array([1, 0, 0]), where=jnp.array([1.0, 1.0, 0.0]))) == 1.0
    assert float(jdl.metrics.accuracy(logits, jax.nn.one_hot(jnp.array([1, 1, 1]), 2))) == pytest.approx(2 / 3)
