import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl import losses
from tests.helpers import draw_normal

# logits (0, log 3): p = softmax = (1/4, 3/4), worked by hand below.
LOGITS = jnp.array([[0.0, np.log(3.0)], [0.0, np.log(3.0)]])
LABELS = jnp.array([1, 0])


def test_gce_equals_hand_computation():
    # q = 1/2: ℓ = (1 − p_y^{1/2}) / (1/2) = 2(1 − √p_y)
    expected = np.array([2 * (1 - np.sqrt(0.75)), 2 * (1 - np.sqrt(0.25))])  # (0.26795, 1.0)
    got = losses.generalized_cross_entropy(LOGITS, LABELS, q=0.5, reduction="none")
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_allclose(losses.generalized_cross_entropy(LOGITS, LABELS, q=0.5), expected.mean(), rtol=1e-6)
    # q = 1: ℓ = 1 − p_y (the MAE end)
    np.testing.assert_allclose(losses.generalized_cross_entropy(LOGITS, LABELS, q=1.0, reduction="none"),
                               [0.25, 0.75], rtol=1e-6)


def test_gce_tends_to_cross_entropy_as_q_goes_to_zero():
    z = draw_normal(jax.random.key(0), (6, 5)) * 3
    y = jnp.arange(6) % 5
    ce = losses.softmax_cross_entropy(z, y, reduction="none")
    np.testing.assert_allclose(losses.generalized_cross_entropy(z, y, q=0.0, reduction="none"), ce, rtol=1e-6)
    gaps = [float(jnp.max(jnp.abs(losses.generalized_cross_entropy(z, y, q=q, reduction="none") - ce)))
            for q in (1e-1, 1e-2, 1e-3)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 2e-3 * float(jnp.max(ce)) ** 2  # O(q·log²p)


def test_gce_gradient_is_cross_entropy_gradient_weighted_by_p_y_to_the_q():
    z = draw_normal(jax.random.key(1), (4, 3))
    y = jnp.array([0, 1, 2, 1])
    q = 0.7
    g = jax.grad(lambda z: losses.generalized_cross_entropy(z, y, q=q, reduction="sum"))(z)  # row i: ∂ℓ_i/∂z_i
    p_y = jax.nn.softmax(z)[jnp.arange(4), y]
    g_ce = jax.nn.softmax(z) - jax.nn.one_hot(y, 3)
    np.testing.assert_allclose(g, p_y[:, None] ** q * g_ce, rtol=1e-5, atol=1e-7)


def test_gce_rejects_bad_q_and_labels():
    with pytest.raises(ValueError, match="generalized_cross_entropy: q must be in"):
        losses.generalized_cross_entropy(LOGITS, LABELS, q=1.5)
    with pytest.raises(ValueError, match="integer class indices of shape"):
        losses.generalized_cross_entropy(LOGITS, jax.nn.one_hot(LABELS, 2))
