"""Scaled dot-product attention: the course's r_ij, p_i, c_i written as loops in numpy, flax's
and jax.nn's attention, finite differences; masks (causal, padding, a row with no key)."""

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl.nn.attention import (
    attend, attention_weights, causal_mask, dot_product_attention, masked_softmax, padding_mask,
)
from tests.helpers import draw_normal

B, H, NQ, NK, DK, DV = 2, 3, 5, 7, 4, 6


def qkv(key, nq=NQ, nk=NK, dtype=jnp.float32):
    kq, kk, kv = jax.random.split(key, 3)
    return (draw_normal(kq, (B, H, nq, DK), dtype), draw_normal(kk, (B, H, nk, DK), dtype),
            draw_normal(kv, (B, H, nk, DV), dtype))


def numpy_attention(q, k, v, mask):
    """The course's equations, one query at a time: r_ij = ⟨q_i, k_j⟩/√d, p_i = softmax over the
    keys the mask allows, c_i = Σ_j p_ij v_j (0 if no key is allowed)."""
    q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
    mask = np.broadcast_to(np.asarray(mask), q.shape[:-1] + (k.shape[-2],))
    out = np.zeros(q.shape[:-1] + (v.shape[-1],))
    for idx in np.ndindex(q.shape[:-1]):
        lead, i = idx[:-1], idx[-1]
        allowed = np.flatnonzero(mask[idx])
        if allowed.size == 0:
            continue
        r = np.array([q[idx] @ k[lead + (j,)] / np.sqrt(q.shape[-1]) for j in allowed])
        p = np.exp(r - r.max()) / np.exp(r - r.max()).sum()
        out[idx] = sum(p_j * v[lead + (j,)] for p_j, j in zip(p, allowed))
    return out


def test_masks_values():
    np.testing.assert_array_equal(causal_mask(3, 3), np.tril(np.ones((3, 3), bool)))
    # bottom-right aligned: 2 new queries after 3 cached keys see keys ≤ 3 and ≤ 4
    np.testing.assert_array_equal(causal_mask(2, 5), [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    np.testing.assert_array_equal(padding_mask(jnp.array([2, 4]), 4),
                                  [[[1, 1, 0, 0]], [[1, 1, 1, 1]]])
    assert padding_mask(jnp.array([2, 4]), 4).shape == (2, 1, 4)


def test_equals_the_course_equations_with_a_padding_and_causal_mask(key):
    q, k, v = qkv(key, nq=NK)
    mask = padding_mask(jnp.array([4, 7]), NK)[:, None] & causal_mask(NK, NK)[None, None]  # (B, 1, n, n)
    np.testing.assert_allclose(dot_product_attention(q, k, v, mask), numpy_attention(q, k, v, mask),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dot_product_attention(q, k, v), numpy_attention(q, k, v, True),
                               rtol=1e-5, atol=1e-5)


def test_equals_flax_and_jax_nn_with_a_mask_and_bias(key):
    q, k, v = qkv(key)
    mask = jax.random.bernoulli(jax.random.key(5), 0.7, (B, 1, NQ, NK)).at[..., 0].set(True)
    bias = draw_normal(jax.random.key(6), (H, NQ, NK))
    ours = dot_product_attention(q, k, v, mask, bias)  # (B, H, n_q, d_v)
    t = lambda a: a.swapaxes(1, 2)  # (B, H, T, D) ↔ (B, T, H, D), flax's and jax.nn's layout
    flax_out = fnn.dot_product_attention(t(q), t(k), t(v), bias=bias[None], mask=mask)
    np.testing.assert_allclose(ours, t(flax_out), rtol=1e-5, atol=1e-6)
    v4 = v[..., :DK]  # jax.nn wants d_v = d_k
    jax_out = jax.nn.dot_product_attention(t(q), t(k), t(v4), bias=bias[None], mask=mask)
    np.testing.assert_allclose(dot_product_attention(q, k, v4, mask, bias), t(jax_out),
                               rtol=1e-5, atol=1e-6)


def test_causal_weights_above_the_diagonal_are_exactly_zero(key):
    q, k, _ = qkv(key, nq=NK)
    p = np.asarray(attention_weights(100.0 * q, k, causal_mask(NK, NK)))  # large scores
    assert (p[..., np.triu_indices(NK, 1)[0], np.triu_indices(NK, 1)[1]] == 0.0).all()
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(p[..., 0, 0], 1.0)  # the first token sees only itself


def test_a_query_with_no_key_gives_zeros_and_finite_gradients(key):
    q, k, v = qkv(key)
    mask = jnp.ones((NQ, NK), bool).at[2].set(False)  # query 2 may see no key
    out = jax.jit(dot_product_attention)(q, k, v, mask)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[:, :, 2], 0.0)
    np.testing.assert_array_equal(masked_softmax(jnp.zeros((2, 3)), jnp.zeros((2, 3), bool)), 0.0)
    grads = jax.jit(jax.grad(lambda q, k, v: jnp.sum(dot_product_attention(q, k, v, mask) ** 2),
                             argnums=(0, 1, 2)))(q, k, v)  # jitted: op by op compiles every primitive
    assert all(np.isfinite(g).all() for g in grads)
    np.testing.assert_array_equal(grads[0][:, :, 2], 0.0)


def test_kv_cache_rows_equal_the_full_causal_attention(key):
    """The last 2 queries against all 7 keys with causal_mask(2, 7) are the last 2 rows of the
    full causal attention: what a decoder with a KV cache computes."""
    q, k, v = qkv(key, nq=NK)
    full = dot_product_attention(q, k, v, causal_mask(NK, NK))
    last = dot_product_attention(q[:, :, -2:], k, v, causal_mask(2, NK))
    np.testing.assert_allclose(last, full[:, :, -2:], rtol=1e-6, atol=1e-6)


def test_gradient_matches_finite_differences_float64(key):
    with jax.enable_x64(True):
        q, k, v = (a[:1, :1, :4] for a in qkv(key, dtype=jnp.float64))  # (1, 1, 4, d)
        bias = draw_normal(jax.random.key(2), (4, 4), jnp.float64)
        mask = causal_mask(4, 4)
        f = lambda t: jnp.sum(jnp.sin(dot_product_attention(t["q"], t["k"], t["v"], mask, t["bias"])))
        errors = jdl.autodiff.check_grads(jax.jit(f), {"q": q, "k": k, "v": v, "bias": bias})
    assert max(errors.values()) < 1e-7, errors


def test_jax_impl_equals_plain_in_value_and_gradient(key):
    q, k, v = qkv(key)
    mask = padding_mask(jnp.array([3, 0]), NK)[:, None]  # example 1 has no key at all
    loss = lambda impl: lambda q, k, v: jnp.sum(jnp.tanh(attend(q, k, v, mask, impl=impl)))
    np.testing.assert_allclose(attend(q, k, v, mask, impl="jax"),
                               attend(q, k, v, mask), rtol=1e-5, atol=1e-6)
    g_jax = jax.grad(loss("jax"), argnums=(0, 1, 2))(q, k, v)
    g_plain = jax.grad(loss("plain"), argnums=(0, 1, 2))(q, k, v)
    for a, b in zip(g_jax, g_plain):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_the_course_worked_shapes():
    """Encoder output 4×512, decoder input 2×512, d_k = 64: Q = X_dec W_q is 2×64, K = V =
    X_enc W_k is 4×64 and the attention is 2×64 (values checked against the loops above)."""
    ks = jax.random.split(jax.random.key(0), 5)
    x_enc, x_dec = draw_normal(ks[0], (4, 512)), draw_normal(ks[1], (2, 512))
    w_q, w_k, w_v = (draw_normal(k_, (512, 64)) / np.sqrt(512) for k_ in ks[2:])
    q, k, v = x_dec @ w_q, x_enc @ w_k, x_enc @ w_v
    assert (q.shape, k.shape, v.shape) == ((2, 64), (4, 64), (4, 64))
    z = dot_product_attention(q, k, v)
    assert z.shape == (2, 64)
    np.testing.assert_allclose(z, numpy_attention(q, k, v, True), rtol=1e-4, atol=1e-5)


def test_errors_name_the_function_and_shapes(key):
    q, k, v = qkv(key)
    with pytest.raises(ValueError, match=r"dot_product_attention: q and k must share d_k, got q "
                                         r"\(2, 3, 5, 4\) with d_k=4 and k \(2, 3, 7, 5\) with d_k=5"):
        dot_product_attention(q, jnp.ones((B, H, NK, 5)), v)
    with pytest.raises(ValueError, match="k and v must have the same number of keys n_k"):
        dot_product_attention(q, k, v[:, :, :3])
    with pytest.raises(ValueError, match=r"mask of shape \(5, 6\) does not broadcast to the "
                                         r"attention scores \(..., n_q, n_k\) = \(2, 3, 5, 7\)"):
        dot_product_attention(q, k, v, jnp.ones((NQ, 6), bool))
    with pytest.raises(ValueError, match=r"bias of shape \(4, 5, 7\) does not broadcast"):
        dot_product_attention(q, k, v, bias=jnp.ones((4, NQ, NK)))
    with pytest.raises(ValueError, match="attend: impl must be one of"):
        attend(q, k, v, impl="flash")
    with pytest.raises(ValueError, match=r"padding_mask: lengths must have shape \(B,\)"):
        padding_mask(jnp.ones((2, 2), jnp.int32), 4)
