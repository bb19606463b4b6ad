"""GPTConfig(prev_tokens=n): the input adds embeddings of each token's n predecessors. Checked
against the sum written out in numpy, for causality, and against the plain GPT when the
tables are zero."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.models.gpt import GPTConfig, embed_tokens, gpt
from jdl.models.gpt_generate import decode_step, init_cache

PREV = GPTConfig(vocab_size=11, context=12, num_layers=2, d_model=16, num_heads=2, positions="rotary",
                 prev_tokens=2)


@pytest.fixture(scope="module")
def model():
    params, _ = gpt(PREV).init(jax.random.key(0), jnp.zeros((1, 12), jnp.int32))
    return params, jax.jit(lambda p, x: gpt(PREV).apply(p, {}, x)[0])


def test_input_is_the_token_plus_its_two_predecessors(model):
    params, _ = model
    ids = np.array([[3, 1, 4, 1, 5, 9, 2, 6]])
    te, prev = np.asarray(params["wte"]["w"]), np.asarray(params["prev"]["w"])
    assert prev.shape == (2, 11, 16)
    want = np.stack([te[ids[0, t]] + sum(prev[j - 1][ids[0, t - j]] for j in (1, 2) if t >= j)
                     for t in range(8)])[None]  # (1, 8, 16)
    np.testing.assert_allclose(embed_tokens(params, jnp.asarray(ids), jnp.arange(8)), want, rtol=1e-6, atol=1e-7)


def test_logits_stay_causal_and_equal_the_plain_gpt_with_zero_tables(model):
    params, apply = model
    ids = jax.random.randint(jax.random.key(1), (3, 10), 0, 11)
    changed = ids.at[:, 6].set((ids[:, 6] + 1) % 11)
    a, b = apply(params, ids), apply(params, changed)
    np.testing.assert_array_equal(a[:, :6], b[:, :6])  # position t reads tokens ≤ t only
    assert np.all(np.abs(np.asarray(a[:, 6:9] - b[:, 6:9])).max(-1) > 1e-4)  # x_6 reaches t = 6, 7, 8 ...
    plain = GPTConfig(**{**PREV.__dict__, "prev_tokens": 0})
    zeroed = {**params, "prev": {"w": jnp.zeros_like(params["prev"]["w"])}}
    no_prev = {k: v for k, v in params.items() if k != "prev"}
    np.testing.assert_allclose(apply(zeroed, ids), gpt(plain).apply(no_prev, {}, ids)[0], rtol=1e-6, atol=1e-6)


def test_kv_cached_decoding_refuses_prev_tokens(model):
    params, _ = model
    with pytest.raises(ValueError, match="prev_tokens"):
        decode_step(params, PREV, init_cache(PREV, 1, 12), jnp.zeros((1, 2), jnp.int32), 0)
    with pytest.raises(ValueError, match="prev_tokens must be"):
        GPTConfig(vocab_size=11, context=12, num_layers=1, d_model=16, num_heads=2, prev_tokens=-1)
