"""GPTConfig(positions="rotary"): RoPE on every block's queries and keys. Checked against a
numpy complex-number formulation of rotary multi-head attention, for relative-position scores,
and for KV-cached decoding equal to recomputing the whole prefix."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.models.gpt import GPTConfig, gpt, stack_blocks
from jdl.models.gpt_generate import decode_step, generate, init_cache
from jdl.nn.multihead import init_params, multi_head_attention
from tests.helpers import draw_normal

ROT = GPTConfig(vocab_size=23, context=16, num_layers=2, d_model=32, num_heads=4, positions="rotary",
                rope_base=100.0)
ROT_REPEAT = GPTConfig(**{**ROT.__dict__, "stack": "repeat"})


def numpy_rotary_mha(params, x, h, base):
    """Causal MHA with each head's (q_i, q_{i+d/2}) pair as the complex number q_i + i·q_{i+d/2}
    turned by e^{i·t·θ_i} at position t, θ_i = base^{−2i/d}; scores Re(q̃_t · conj(k̃_s)), float64."""
    x = np.asarray(x, np.float64)
    B, T, C = x.shape
    d = C // h
    proj = lambda n: (x @ np.asarray(params[n]["w"], np.float64) + np.asarray(params[n]["b"])).reshape(B, T, h, d)
    theta = base ** (-np.arange(0, d, 2) / d)
    turn = np.exp(1j * np.arange(T)[:, None] * theta)  # (T, d/2)
    cplx = lambda a: (a[..., : d // 2] + 1j * a[..., d // 2:]) * turn[None, :, None]  # (B, T, h, d/2)
    q, k, v = cplx(proj("q")), cplx(proj("k")), proj("v")
    s = np.einsum("bqhi,bkhi->bhqk", q, np.conj(k)).real / np.sqrt(d)  # (B, h, T, T)
    s = np.where(np.tril(np.ones((T, T), bool)), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    z = np.einsum("bhqk,bkhd->bqhd", p, v).reshape(B, T, C)
    return z @ np.asarray(params["o"]["w"], np.float64) + np.asarray(params["o"]["b"]), p


@pytest.fixture(scope="module")
def mha():
    params = init_params(jax.random.key(0), 4, 16, 4, 4)
    x = draw_normal(jax.random.key(1), (2, 9, 16))
    return params, x


def test_rotary_attention_equals_the_complex_number_formula(mha):
    params, x = mha
    y, p = multi_head_attention(params, x, 4, causal=True, rotary_base=50.0)
    y_ref, p_ref = numpy_rotary_mha(params, x, 4, 50.0)
    np.testing.assert_allclose(p, p_ref, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(y, y_ref, rtol=1e-4, atol=1e-5)
    y_plain, _ = multi_head_attention(params, x, 4, causal=True)
    assert np.abs(np.asarray(y_plain) - y_ref).max() > 1e-2  # the rotation matters: the test can fail


def test_rotary_scores_depend_only_on_the_offset(mha):
    """A sequence of one repeated vector has q_t = q and k_s = k: with RoPE the score q_tᵀR_{s−t}k
    is a function of t − s alone, so log p_{t,t−δ} − log p_{t,t} is the same for every row t."""
    params, x = mha
    same = jnp.broadcast_to(x[:, :1], x.shape)  # (B, T, C): x_0 at every position
    _, p = multi_head_attention(params, same, 4, causal=True, rotary_base=50.0)
    with np.errstate(divide="ignore"):  # log 0 above the diagonal (masked), never read
        logp = np.log(np.asarray(p, np.float64))  # (B, h, T, T)
    for delta in (1, 3, 6):
        rows = [logp[..., t, t - delta] - logp[..., t, t] for t in range(delta, 9)]
        np.testing.assert_allclose(rows[1:], np.broadcast_to(rows[0], (len(rows) - 1, *rows[0].shape)), atol=1e-4)
        assert np.abs(rows[0]).max() > 1e-3  # not all equal scores (as without positions)


@pytest.fixture(scope="module")
def rotary_model():
    params, _ = gpt(ROT).init(jax.random.key(2), jnp.zeros((1, 8), jnp.int32))
    params = jax.tree.map(lambda a: a * 8.0 if a.ndim >= 2 else a, params)  # logits of order 1
    ids = jax.random.randint(jax.random.key(3), (3, 12), 0, ROT.vocab_size)
    return params, ids, np.asarray(gpt(ROT).apply(params, {}, ids)[0])


def test_rotary_gpt_has_no_position_table_and_uses_positions(rotary_model):
    params, ids, full = rotary_model
    assert set(params) == {"wte", "blocks", "ln_f"}
    swapped = np.asarray(gpt(ROT).apply(params, {}, ids.at[:, 0].set(ids[:, 1]).at[:, 1].set(ids[:, 0]))[0])
    assert np.abs(swapped[:, 2:] - full[:, 2:]).max() > 1e-3  # order matters: positions are seen


@pytest.mark.parametrize("config", [ROT, ROT_REPEAT], ids=["loop", "repeat"])
def test_rotary_cached_logits_equal_recomputing_the_prefix(rotary_model, config):
    params, ids, full = rotary_model
    if config.stack == "repeat":
        params = {**params, "blocks": stack_blocks(params["blocks"])}
    step = jax.jit(lambda p, cache, tok, pos: decode_step(p, config, cache, tok, pos))
    logits, cache = step(params, init_cache(config, 3, 12), ids[:, :5], 0)  # prefill 5 tokens
    outs = [logits]
    for t in range(5, 12):
        logits, cache = step(params, cache, ids[:, t:t + 1], t)
        outs.append(logits)
    np.testing.assert_allclose(np.concatenate(outs, axis=1), full, rtol=1e-5, atol=1e-5)


def test_rotary_cached_greedy_generation_equals_uncached(rotary_model):
    params, ids, _ = rotary_model
    out = np.asarray(generate(params, ROT, ids[:, :3], 9, None, temperature=0.0))
    seq = np.zeros((3, 12), np.int32)
    seq[:, :3] = ids[:, :3]
    for t in range(3, 12):  # recompute the whole prefix for every new token
        seq[:, t] = np.argmax(np.asarray(gpt(ROT).apply(params, {}, jnp.asarray(seq))[0])[:, t - 1], axis=-1)
    np.testing.assert_array_equal(out, seq)
    assert max(len(set(row)) for row in out[:, 3:].tolist()) > 1


def test_positions_must_be_known():
    with pytest.raises(ValueError, match="positions must be one of"):
        GPTConfig(vocab_size=5, context=4, num_layers=1, d_model=8, num_heads=2, positions="sinusoidal")


def test_rotary_refuses_cross_attention(mha):
    params, x = mha
    with pytest.raises(ValueError, match=r"rotary_base .*\(self-attention\); got a context"):
        multi_head_attention(params, x, 4, context=x, rotary_base=50.0)
