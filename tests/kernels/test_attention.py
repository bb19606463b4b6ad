"""Blockwise (online-softmax) attention equals the plain definition in value and gradient —
causal, padded, with a bias, with n_k not a multiple of the block, in float32 and float64 —
and needs less temporary memory than the plain attention once compiled."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl.kernels.attention import blockwise_attention
from jdl.nn import MultiHeadAttention, attend, causal_mask, dot_product_attention, padding_mask
from tests.helpers import draw_normal

B, H, NQ, NK, DK, DV = 2, 2, 9, 13, 4, 3


def inputs(key, nq=NQ, nk=NK, dtype=jnp.float32):
    ks = jax.random.split(key, 4)
    return (draw_normal(ks[0], (B, H, nq, DK), dtype), draw_normal(ks[1], (B, H, nk, DK), dtype),
            draw_normal(ks[2], (B, H, nk, DV), dtype), draw_normal(ks[3], (H, nq, nk), dtype))


def value_and_grads(impl, causal, block_size=4):
    """One jitted loss per configuration: sum(sin(attention)) and its gradient in q, k, v, bias."""
    mask = padding_mask(jnp.array([NK - 5, 0]), NK)[:, None]  # example 1 has no key at all

    def loss(q, k, v, bias):
        o = attend(q, k, v, mask, bias, causal=causal, impl=impl, block_size=block_size)
        return jnp.sum(jnp.sin(o)), o
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3), has_aux=True))


@pytest.mark.parametrize("causal", [False, True])
def test_equals_plain_in_value_and_gradient(key, causal):
    q, k, v, bias = inputs(key)
    (_, o_block), g_block = value_and_grads("blockwise", causal)(q, k, v, bias)  # 13 keys, blocks of 4
    (_, o_plain), g_plain = value_and_grads("plain", causal)(q, k, v, bias)
    np.testing.assert_allclose(o_block, o_plain, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(o_block[1], 0.0)  # no key: zeros, not NaN
    for name, a, b in zip(("q", "k", "v", "bias"), g_block, g_plain):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=name)


def test_causal_with_fewer_queries_than_keys_is_a_kv_cache_step(key):
    """Bottom-right causal alignment, as jdl.nn.causal_mask: the last 3 queries against all keys."""
    q, k, v, _ = inputs(key, nq=NK)
    full = blockwise_attention(q, k, v, causal=True, block_size=5)
    last = blockwise_attention(q[:, :, -3:], k, v, causal=True, block_size=5)
    np.testing.assert_allclose(last, full[:, :, -3:], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(full, dot_product_attention(q, k, v, causal_mask(NK, NK)),
                               rtol=1e-5, atol=1e-6)


def test_gradient_equals_plain_to_float64_rounding(key):
    """In float64 the recomputed backward agrees with autodiff through the plain attention to
    ~1e-13 (the plain one is checked against finite differences in tests/nn/test_attention.py)."""
    with jax.enable_x64(True):
        q, k, v, bias = (a[:1] for a in inputs(key, nq=3, nk=5, dtype=jnp.float64))
        mask = jnp.array([True, True, False, True, True])
        grads = lambda impl: jax.jit(jax.grad(lambda q, k, v, b: jnp.sum(jnp.sin(attend(
            q, k, v, mask, b, causal=True, impl=impl, block_size=2))), argnums=(0, 1, 2, 3)))
        for a, b in zip(grads("blockwise")(q, k, v, bias), grads("plain")(q, k, v, bias)):
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)


def test_multihead_blockwise_equals_plain(key):
    x = draw_normal(key, (B, 11, 8))
    params, _ = MultiHeadAttention(2, 8).init(key, x)
    mask = padding_mask(jnp.array([7, 11]), 11)
    run = lambda impl: MultiHeadAttention(2, 8, impl=impl).apply(params, {}, x, mask=mask,
                                                                 causal=True)[0]
    np.testing.assert_allclose(run("blockwise"), run("plain"), rtol=1e-5, atol=1e-6)


def test_needs_less_temporary_memory_than_plain():
    """Compiled forward+backward at n = 1024: the plain attention keeps the n × n weights
    (4 MiB a head in float32), the blockwise one n × block."""
    n, d = 1024, 16
    x = jax.ShapeDtypeStruct((1, 1, n, d), jnp.float32)

    def temp_bytes(f):
        grad = jax.grad(lambda q, k, v: jnp.sum(f(q, k, v)), argnums=(0, 1, 2))
        return jax.jit(grad).lower(x, x, x).compile().memory_analysis().temp_size_in_bytes

    plain = temp_bytes(lambda q, k, v: dot_product_attention(q, k, v, causal_mask(n, n)))
    block = temp_bytes(lambda q, k, v: blockwise_attention(q, k, v, causal=True, block_size=64))
    assert plain > n * n * 4  # at least one n × n float32 array
    assert block < plain / 8, (block, plain)


def test_errors(key):
    q, k, v, _ = inputs(key)
    with pytest.raises(ValueError, match="blockwise_attention: block_size must be a positive int, got 0"):
        blockwise_attention(q, k, v, block_size=0)
    with pytest.raises(ValueError, match="blockwise_attention: q and k must share d_k"):
        blockwise_attention(q, v, v)
    with pytest.raises(ValueError, match=r"blockwise_attention: mask of shape \(3, 13\) does not "
                                         r"broadcast"):
        blockwise_attention(q, k, v, jnp.ones((3, NK), bool))
