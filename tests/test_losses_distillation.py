"""jdl.losses.distillation: Hinton et al. (2015)'s α·T²·KL(softmax(t/T) ‖ softmax(s/T)) + (1−α)·CE."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl import losses


def test_distillation_equals_a_hand_computation():
    s, t, y, T, a = [1.0, 0.0, -1.0], [2.0, 1.0, 0.0], 0, 2.0, 0.5
    p = [math.exp(v / T) for v in t]
    p = [v / sum(p) for v in p]  # softmax(t/T) = (0.506, 0.307, 0.186)
    q = [math.exp(v / T) for v in s]
    q = [v / sum(q) for v in q]  # softmax(s/T): the same shape shifted by 1/T → equal to p
    kl = sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q))
    ce = -math.log(math.exp(s[y]) / sum(math.exp(v) for v in s))
    expected = a * T * T * kl + (1 - a) * ce  # kl = 0 (the logits differ by a constant): 0.5·0.4076
    got = losses.distillation(jnp.array([s]), jnp.array([t]), jnp.array([y]), temperature=T, alpha=a)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_allclose(got, 0.5 * 0.40760596, rtol=1e-6)
    s2 = [0.5, 2.0, -1.0]  # a student that disagrees: KL > 0
    q = [math.exp(v / T) for v in s2]
    q = [v / sum(q) for v in q]
    kl = sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q))
    ce = -math.log(math.exp(s2[y]) / sum(math.exp(v) for v in s2))
    got = losses.distillation(jnp.array([s2]), jnp.array([t]), jnp.array([y]), temperature=T, alpha=a)
    np.testing.assert_allclose(got, a * T * T * kl + (1 - a) * ce, rtol=1e-6)


def test_distillation_equals_pytorch_value_and_gradient():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(6, 5)).astype(np.float32) * 3, rng.normal(size=(6, 5)).astype(np.float32) * 3
    y = rng.integers(0, 5, size=6)
    T, a = 3.0, 0.7
    st = torch.tensor(s, requires_grad=True)
    ref = (a * T * T * F.kl_div(F.log_softmax(st / T, -1), F.softmax(torch.tensor(t) / T, -1), reduction="batchmean")
           + (1 - a) * F.cross_entropy(st, torch.tensor(y)))  # the usual PyTorch KD loss
    ref.backward()
    f = lambda s: losses.distillation(s, jnp.asarray(t), jnp.asarray(y), temperature=T, alpha=a)
    np.testing.assert_allclose(f(jnp.asarray(s)), ref.item(), rtol=1e-5)
    np.testing.assert_allclose(jax.grad(f)(jnp.asarray(s)), st.grad.numpy(), rtol=1e-4, atol=1e-7)
    g_teacher = jax.grad(lambda t: losses.distillation(jnp.asarray(s), t, jnp.asarray(y), T, a))(jnp.asarray(t))
    np.testing.assert_array_equal(g_teacher, 0.0)  # the teacher is a fixed target


def test_t_squared_keeps_the_soft_gradient_size_constant_in_t():
    """∂KL/∂s = (q_T − p_T)/T ≈ (s − t)/(K·T²) for large T with zero-mean logits: without the
    T² the soft gradient falls as 1/T²; with it, it tends to (s − t)/K whatever T."""
    rng = np.random.default_rng(1)
    K = 10
    s, t = rng.normal(size=(1, K)), rng.normal(size=(1, K))
    s, t = jnp.asarray(s - s.mean(), jnp.float32), jnp.asarray(t - t.mean(), jnp.float32)
    y = jnp.array([0])

    def soft_grad_norm(T, scaled):
        g = jax.grad(lambda s: losses.distillation(s, t, y, temperature=T, alpha=1.0))(s)
        return float(jnp.linalg.norm(g if scaled else g / T ** 2))

    scaled = [soft_grad_norm(T, True) for T in (5.0, 10.0, 20.0, 40.0)]
    plain = [soft_grad_norm(T, False) for T in (5.0, 10.0, 20.0, 40.0)]
    limit = float(jnp.linalg.norm(s - t)) / K
    np.testing.assert_allclose(scaled, limit, rtol=0.1)  # ~constant in T
    np.testing.assert_allclose(scaled[-1], limit, rtol=0.01)
    np.testing.assert_allclose(np.array(plain[:-1]) / np.array(plain[1:]), 4.0, rtol=0.1)  # 1/T² without it


def test_distillation_alpha_ends_and_errors():
    s, t, y = jnp.array([[1.0, 2.0, 0.5]]), jnp.array([[0.0, 3.0, 1.0]]), jnp.array([1])
    np.testing.assert_allclose(losses.distillation(s, t, y, 2.0, alpha=0.0), losses.softmax_cross_entropy(s, y))
    np.testing.assert_allclose(losses.distillation(s, s, y, 2.0, alpha=1.0), 0.0, atol=1e-7)
    with pytest.raises(ValueError, match=r"distillation: student logits have shape \(1, 3\) but the teacher's have \(1, 2\)"):
        losses.distillation(s, t[:, :2], y)
    with pytest.raises(ValueError, match="distillation: need temperature > 0 and alpha in"):
        losses.distillation(s, t, y, temperature=0.0)
