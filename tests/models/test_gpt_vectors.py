import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.models.gpt import GPTConfig, gpt
from jdl.models.gpt_vectors import vector_gpt
from tests.helpers import draw_normal

CFG = GPTConfig(vocab_size=7, context=6, num_layers=2, d_model=16, num_heads=2)


def test_one_hot_read_in_and_tied_read_out_give_the_token_gpt():
    """With W_in = W_te, b_in = 0 and W_out = W_teᵀ, b_out = 0 on one-hot inputs, the vector
    GPT is the token GPT: the same blocks, the same final LayerNorm."""
    tok = gpt(CFG)
    params, _ = tok.init(jax.random.key(0), jnp.zeros((1, 6), jnp.int32))
    vec = vector_gpt(CFG, d_in=7, d_out=7)
    vparams, _ = vec.init(jax.random.key(1), jnp.zeros((1, 6, 7)))
    assert jax.tree.structure(vparams["blocks"]) == jax.tree.structure(params["blocks"])
    wte = params["wte"]["w"]
    vparams = {**params, "read_in": {"w": wte, "b": jnp.zeros(16)},
               "read_out": {"w": wte.T, "b": jnp.zeros(7)}}
    del vparams["wte"]
    ids = jax.random.randint(jax.random.key(2), (3, 6), 0, 7)
    want, _ = tok.apply(params, {}, ids)
    got, _ = vec.apply(vparams, {}, jax.nn.one_hot(ids, 7))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_causal_and_checked():
    m = vector_gpt(CFG, d_in=3, d_out=1)
    p, _ = m.init(jax.random.key(0), jnp.zeros((1, 6, 3)))
    z = draw_normal(jax.random.key(1), (2, 6, 3))
    y1, _ = m.apply(p, {}, z)
    y2, _ = m.apply(p, {}, z.at[:, 4].set(5.0))
    np.testing.assert_array_equal(y1[:, :4], y2[:, :4])
    assert not np.allclose(y1[:, 4], y2[:, 4])
    with pytest.raises(ValueError, match="vector_gpt: expected vectors of shape"):
        m.apply(p, {}, jnp.zeros((2, 6, 4)))
    with pytest.raises(ValueError, match="exceed the context"):
        m.apply(p, {}, jnp.zeros((2, 7, 3)))
