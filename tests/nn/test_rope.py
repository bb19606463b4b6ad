"""Rotary embeddings: a complex-number formula in numpy, Hugging Face's LLaMA (rotate half) and
GPT-J (interleaved) implementations, and the relative-position property of the scores."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.nn import rope, rope_frequencies
from tests.helpers import draw_normal

B, H, T, D = 2, 3, 5, 8


def numpy_rope(x, positions, base=10000.0, interleaved=False):
    """Pair i as the complex number a_i + i·b_i, multiplied by e^{i p θ_i}, θ_i = base^{−2i/d}."""
    x = np.asarray(x, np.float64)
    d = x.shape[-1]
    a, b = (x[..., 0::2], x[..., 1::2]) if interleaved else (x[..., : d // 2], x[..., d // 2:])
    theta = base ** (-np.arange(0, d, 2) / d)
    z = (a + 1j * b) * np.exp(1j * np.asarray(positions)[..., None] * theta)
    if interleaved:
        return np.stack([z.real, z.imag], -1).reshape(x.shape)
    return np.concatenate([z.real, z.imag], -1)


@pytest.fixture(scope="module")
def qk():
    q = draw_normal(jax.random.key(1), (B, H, T, D))
    k = draw_normal(jax.random.key(2), (B, H, T, D))
    return q, k


def test_frequencies():
    np.testing.assert_allclose(rope_frequencies(8), [1, 10000 ** -0.25, 10000 ** -0.5, 10000 ** -0.75],
                               rtol=1e-6)


@pytest.mark.parametrize("interleaved", [False, True])
def test_equals_the_complex_rotation(qk, interleaved):
    q, _ = qk
    pos = jnp.array([0, 1, 2, 7, 100])
    y = rope(q, pos, interleaved=interleaved)
    assert y.shape == q.shape and y.dtype == q.dtype
    np.testing.assert_allclose(y, numpy_rope(q, pos, interleaved=interleaved), rtol=1e-5, atol=2e-5)
    np.testing.assert_allclose(rope(q, None, base=500.0), numpy_rope(q, np.arange(T), 500.0), atol=2e-5)
    np.testing.assert_allclose(rope(q, jnp.zeros(T, jnp.int32)), q)  # position 0: no rotation
    np.testing.assert_allclose(jnp.linalg.norm(y, axis=-1), jnp.linalg.norm(q, axis=-1), rtol=1e-5)


def test_scores_depend_only_on_the_offset(qk):
    """⟨rope(q, m), rope(k, n)⟩ is a function of m − n: shifting both positions changes nothing."""
    q, k = qk[0][0, 0], qk[1][0, 0]  # (T, D)
    m, n = jnp.array([0, 3, 9, 4, 2]), jnp.array([1, 3, 2, 8, 2])

    def scores(shift):
        return jnp.sum(rope(q, m + shift) * rope(k, n + shift), axis=-1)  # (T,)

    for interleaved in (False, True):
        base = scores(0)
        for shift in (1, 17, 250):
            np.testing.assert_allclose(scores(shift), base, rtol=1e-4, atol=1e-4)
    qr, kr = rope(q, jnp.full(T, 4)), rope(k, jnp.full(T, 1))
    other = jnp.sum(qr * kr, -1)  # offset 3 instead of −1, 0, 7, −4, 0
    assert np.abs(other - scores(0)).min() > 1e-3


def test_interleaved_is_rotate_half_on_permuted_features(qk):
    q, _ = qk
    evens_then_odds = np.r_[0:D:2, 1:D:2]  # interleaved pair (2i, 2i+1) → rotate-half pair (i, i+d/2)
    np.testing.assert_allclose(rope(q[..., evens_then_odds], None),
                               rope(q, None, interleaved=True)[..., evens_then_odds], atol=1e-6)


@pytest.mark.torch
def test_equals_hugging_face_llama_rotate_half(qk):
    torch = pytest.importorskip("torch")
    llama = pytest.importorskip("transformers.models.llama.modeling_llama")
    from transformers import LlamaConfig
    config = LlamaConfig(hidden_size=H * D, num_attention_heads=H, max_position_embeddings=64)
    pos = torch.tensor([[0, 1, 2, 3, 4], [6, 7, 8, 9, 10]])
    q, k = (torch.tensor(np.asarray(a)) for a in qk)
    cos, sin = llama.LlamaRotaryEmbedding(config)(q, pos)  # (B, T, D)
    q_ref, k_ref = llama.apply_rotary_pos_emb(q, k, cos, sin)
    jpos = jnp.asarray(pos.numpy())[:, None, :]  # (B, 1, T) against (B, H, T)
    np.testing.assert_allclose(rope(qk[0], jpos), q_ref.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rope(qk[1], jpos), k_ref.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.torch
def test_equals_hugging_face_gptj_interleaved(qk):
    torch = pytest.importorskip("torch")
    gptj = pytest.importorskip("transformers.models.gptj.modeling_gptj")
    x = np.asarray(qk[0]).transpose(0, 2, 1, 3)  # GPT-J's layout (B, T, H, D)
    pos = np.array([[0, 1, 2, 3, 4], [3, 4, 5, 6, 7]])
    table = gptj.create_sinusoidal_positions(16, D)[torch.tensor(pos)]  # (B, T, D): sin | cos
    sin, cos = torch.split(table, D // 2, dim=-1)
    ref = gptj.apply_rotary_pos_emb(torch.tensor(x), sin, cos)
    y = rope(jnp.asarray(x), jnp.asarray(pos)[:, :, None], interleaved=True)  # positions (B, T, 1)
    np.testing.assert_allclose(y, ref.numpy(), rtol=1e-5, atol=1e-5)


def test_jit_grad_and_bfloat16(qk):
    q, _ = qk
    f = jax.jit(lambda x, p: rope(x, p))
    np.testing.assert_allclose(f(q, jnp.arange(T)), rope(q, None), atol=1e-6)
    g = jax.grad(lambda x: jnp.sum(rope(x, None) ** 2))(q)  # a rotation keeps ‖x‖²: gradient 2x
    np.testing.assert_allclose(g, 2 * q, rtol=1e-5, atol=1e-5)
    yb = rope(q.astype(jnp.bfloat16), None)
    assert yb.dtype == jnp.bfloat16
    np.testing.assert_allclose(yb.astype(jnp.float32), rope(q, None), atol=5e-2)


def test_errors_name_rope():
    with pytest.raises(ValueError, match=r"rope: the feature size d=5 of x \(2, 3, 5\) must be even"):
        rope(jnp.zeros((2, 3, 5)), None)
    with pytest.raises(ValueError, match="rope_frequencies: d must be an even positive int, got 3"):
        rope_frequencies(3)
    with pytest.raises(ValueError, match=r"rope: positions of shape \(4,\) do not broadcast"):
        rope(jnp.zeros((2, 3, 4)), jnp.arange(4))
    with pytest.raises(TypeError, match="rope: positions must be integers"):
        rope(jnp.zeros((2, 3, 4)), jnp.ones(3))
