"""jdl.models.gpt and gpt_generate: causality, the KV cache against recomputing the prefix,
loop against repeat stacking, the tied head, training, and errors. (Agreement with Hugging
Face's GPT-2 is in test_gpt2_weights.py.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl import optim
from jdl.losses import softmax_cross_entropy
from jdl.models.gpt import GPTConfig, gpt, stack_blocks, unstack_blocks
from jdl.models.gpt_generate import decode_step, generate, init_cache
from tests.helpers import assert_close

CFG = GPTConfig(vocab_size=37, context=16, num_layers=2, d_model=32, num_heads=4)
REPEAT = GPTConfig(vocab_size=37, context=16, num_layers=2, d_model=32, num_heads=4, stack="repeat")


def ce_value_and_grad(config, ids):
    """The jitted value and gradient of the next-token cross-entropy on ``ids``."""
    def loss(p):
        return softmax_cross_entropy(gpt(config).apply(p, {}, ids)[0][:, :-1], ids[:, 1:])
    return jax.jit(jax.value_and_grad(loss))


@pytest.fixture(scope="module")
def loop_grad(model, ids):
    return ce_value_and_grad(CFG, ids)(model[0])


def larger(params, scale=8.0):
    """GPT-2's 0.02 initialization gives near-uniform logits; scale the weights up so that the
    comparisons below see logits of order 1 and greedy choices that change with the input."""
    return jax.tree.map(lambda a: a * scale if a.ndim >= 2 else a, params)


@pytest.fixture(scope="module")
def model():
    params, _ = gpt(CFG).init(jax.random.key(0), jnp.zeros((1, 8), jnp.int32))
    return larger(params), jax.jit(lambda p, ids: gpt(CFG).apply(p, {}, ids)[0])


@pytest.fixture(scope="module")
def ids():
    return jax.random.randint(jax.random.key(1), (3, 12), 0, CFG.vocab_size)


def test_shapes_and_param_layout(model):
    params, _ = gpt(CFG).init(jax.random.key(0), jnp.zeros((2, 8), jnp.int32))
    structs, _ = jax.eval_shape(gpt(CFG).init, jax.random.key(0), jnp.zeros((2, 8), jnp.int32))
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, structs)
    assert model[1](params, jnp.zeros((2, 8), jnp.int32)).shape == (2, 8, 37)
    assert set(params) == {"wte", "wpe", "blocks", "ln_f"}  # tied: no head
    assert set(params["blocks"]) == {"0_block", "1_block"}
    blk = params["blocks"]["0_block"]
    assert jax.tree.map(jnp.shape, blk["attn"]["q"]) == {"w": (32, 32), "b": (32,)}
    assert blk["mlp"]["fc1"]["w"].shape == (32, 128)  # d_ff = 4·d_model
    rp, _ = gpt(REPEAT).init(jax.random.key(0), jnp.zeros((2, 8), jnp.int32))
    assert rp["blocks"]["attn"]["o"]["w"].shape == (2, 32, 32)  # stacked on a layer axis
    assert_close(rp["blocks"], stack_blocks(params["blocks"]), rtol=0, atol=0)


def test_gpt2_initialization_scales():
    cfg = GPTConfig(vocab_size=200, context=8, num_layers=4, d_model=64, num_heads=4)
    params, _ = gpt(cfg).init(jax.random.key(0), jnp.zeros((1, 4), jnp.int32))
    blk = params["blocks"]["3_block"]
    np.testing.assert_allclose(np.std(params["wte"]["w"]), 0.02, rtol=0.05)
    np.testing.assert_allclose(np.std(blk["attn"]["q"]["w"]), 0.02, rtol=0.05)
    np.testing.assert_allclose(np.std(blk["mlp"]["fc2"]["w"]), 0.02 / np.sqrt(8), rtol=0.05)


def test_causal_a_future_token_does_not_change_earlier_logits(model, ids):
    params, apply = model
    base = np.asarray(apply(params, ids))
    t = 6
    changed = np.asarray(apply(params, ids.at[:, t].set((ids[:, t] + 1) % CFG.vocab_size)))
    np.testing.assert_array_equal(changed[:, :t], base[:, :t])
    assert np.abs(changed[:, t:] - base[:, t:]).min(axis=-1).max() > 1e-3  # every later position moves


@pytest.mark.parametrize("config", [CFG, REPEAT], ids=["loop", "repeat"])
def test_cached_logits_equal_recomputing_the_prefix(model, ids, config):
    params, apply = model
    if config.stack == "repeat":
        params = {**params, "blocks": stack_blocks(params["blocks"])}
    full = np.asarray(apply(model[0], ids))  # (B, 12, V), uncached, loop params
    traces = []

    def counted(p, cache, tok, pos):
        traces.append(tok.shape)
        return decode_step(p, config, cache, tok, pos)

    step = jax.jit(counted)
    cache = init_cache(config, 3, 12)
    logits, cache = step(params, cache, ids[:, :4], 0)  # prefill 4 tokens
    outs = [logits]
    for t in range(4, 12):
        logits, cache = step(params, cache, ids[:, t:t + 1], t)
        outs.append(logits)
    np.testing.assert_allclose(np.concatenate(outs, axis=1), full, rtol=1e-5, atol=1e-5)
    assert traces == [(3, 4), (3, 1)]  # one trace for the prefill, one for every later position


@pytest.mark.parametrize("config", [CFG, REPEAT], ids=["loop", "repeat"])
def test_cached_greedy_generation_equals_uncached(model, ids, config):
    params, apply = model
    p = params if config.stack == "loop" else {**params, "blocks": stack_blocks(params["blocks"])}
    out = np.asarray(generate(p, config, ids[:, :3], 9, None, temperature=0.0))
    seq = np.zeros((3, 12), np.int32)  # padded to one length: causal, so padding is never seen
    seq[:, :3] = ids[:, :3]
    for t in range(3, 12):  # recompute the whole prefix for every new token
        seq[:, t] = np.argmax(np.asarray(apply(params, jnp.asarray(seq)))[:, t - 1], axis=-1)
    np.testing.assert_array_equal(out, seq)
    assert max(len(set(row)) for row in out[:, 3:].tolist()) > 1  # not constant: the test can fail


def test_sampled_generation_is_reproducible_and_respects_top_k(model, ids):
    params, _ = model
    a = generate(params, CFG, ids[:, :3], 9, jax.random.key(5), temperature=1.5, top_k=1, top_p=0.9)
    greedy = generate(params, CFG, ids[:, :3], 9, None, temperature=0.0)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(greedy))  # top-1 is greedy
    b1 = generate(params, CFG, ids[:, :3], 9, jax.random.key(5), temperature=2.0, top_k=30, top_p=0.99)
    b2 = generate(params, CFG, ids[:, :3], 9, jax.random.key(5), temperature=2.0, top_k=30, top_p=0.99)
    np.testing.assert_array_equal(np.asarray(b1), np.asarray(b2))
    assert not np.array_equal(np.asarray(b1), np.asarray(greedy))
    assert b1.shape == (3, 12) and b1.dtype == ids.dtype


def test_repeat_equals_loop_given_the_same_params(model, ids, loop_grad):
    params, apply = model
    stacked = {**params, "blocks": stack_blocks(params["blocks"])}
    (l_loop, g_loop), (l_rep, g_rep) = loop_grad, ce_value_and_grad(REPEAT, ids)(stacked)
    np.testing.assert_allclose(l_rep, l_loop, rtol=1e-6)
    assert_close(unstack_blocks(g_rep["blocks"]), g_loop["blocks"], rtol=1e-4, atol=1e-6)
    assert_close(unstack_blocks(stacked["blocks"]), params["blocks"], rtol=0, atol=0)


@pytest.mark.parametrize("fields", [{"fused_qkv": True}, {"attention": "jax"}, {"attention": "blockwise"}])
def test_fast_paths_equal_the_plain_model(model, ids, loop_grad, fields):
    """GPTConfig's speed levers (one fused QKV matmul, the jax.nn and blockwise attention) give
    the plain model's loss and gradient from the same params."""
    import dataclasses

    params, _ = model
    loss, grads = ce_value_and_grad(dataclasses.replace(CFG, **fields), ids)(params)
    np.testing.assert_allclose(loss, loop_grad[0], rtol=1e-5)
    assert_close(grads, loop_grad[1], rtol=1e-4, atol=1e-6)


def test_tied_head_shares_the_embedding(model, ids, loop_grad):
    params, _ = model
    untied_cfg = GPTConfig(vocab_size=37, context=16, num_layers=2, d_model=32, num_heads=4,
                           tied_head=False)
    untied = {**params, "head": {"w": params["wte"]["w"].T}}
    l_tied, g_tied = loop_grad
    l_untied, g_untied = ce_value_and_grad(untied_cfg, ids)(untied)
    np.testing.assert_allclose(l_tied, l_untied, rtol=1e-6)
    # one matrix, two uses: the tied gradient is the embedding's plus the head's
    np.testing.assert_allclose(g_tied["wte"]["w"], g_untied["wte"]["w"] + g_untied["head"]["w"].T,
                               rtol=1e-4, atol=1e-7)
    fresh, _ = gpt(untied_cfg).init(jax.random.key(0), jnp.zeros((1, 4), jnp.int32))
    assert fresh["head"]["w"].shape == (32, 37)


def test_training_steps_reduce_the_loss():
    cfg = GPTConfig(vocab_size=11, context=16, num_layers=1, d_model=32, num_heads=2,
                    stack="repeat")
    model = gpt(cfg)
    data = jnp.tile(jnp.arange(11, dtype=jnp.int32), 3)[None, :13].repeat(4, axis=0)  # counting
    params, _ = model.init(jax.random.key(0), data)
    opt = optim.adamw(3e-3, weight_decay=0.01)

    def loss_fn(p, key, train):
        logits, _ = model.apply(p, {}, data[:, :-1], key=key, train=train)
        return softmax_cross_entropy(logits, data[:, 1:])

    @jax.jit
    def step(p, s, key):
        loss, g = jax.value_and_grad(loss_fn)(p, key, True)
        updates, s = opt.update(g, s, p)
        return optim.apply_updates(p, updates), s, loss

    s = opt.init(params)
    losses = []
    for i in range(15):
        params, s, loss = step(params, s, jax.random.key(i))
        losses.append(float(loss))
    assert losses[-1] < 0.6 * losses[0]


def test_dropout_needs_a_key_and_is_reproducible(ids):
    cfg = GPTConfig(vocab_size=37, context=16, num_layers=1, d_model=32, num_heads=4, dropout=0.5)
    model = gpt(cfg)
    params, _ = model.init(jax.random.key(0), ids)
    with pytest.raises(ValueError, match="gpt is stochastic and needs a random key"):
        model.apply(params, {}, ids, train=True)
    train = jax.jit(lambda p, k: model.apply(p, {}, ids, key=k, train=True)[0])
    a, b = train(params, jax.random.key(1)), train(params, jax.random.key(1))
    c = jax.jit(lambda p: model.apply(p, {}, ids)[0])(params)
    np.testing.assert_array_equal(a, b)
    assert np.abs(np.asarray(a - c)).max() > 1e-3


def test_errors(model, ids):
    params, _ = model
    with pytest.raises(ValueError, match="GPTConfig: d_model=30 is not divisible by num_heads=4"):
        GPTConfig(vocab_size=10, context=8, num_layers=1, d_model=30, num_heads=4)
    with pytest.raises(ValueError, match="GPTConfig: attention must be one of"):
        GPTConfig(vocab_size=5, context=4, num_layers=1, d_model=8, num_heads=2, attention="flash")
    with pytest.raises(ValueError, match="drops attention weights, which needs attention='plain'"):
        GPTConfig(vocab_size=5, context=4, num_layers=1, d_model=8, num_heads=2, dropout=0.1, attention="jax")
    with pytest.raises(ValueError, match="GPTConfig: stack must be one of"):
        GPTConfig(vocab_size=10, context=8, num_layers=1, d_model=32, num_heads=4, stack="scan")
    with pytest.raises(TypeError, match="gpt: expected integer token ids"):
        gpt(CFG).apply(params, {}, jnp.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"gpt: expected token ids of shape \(B, T\)"):
        gpt(CFG).apply(params, {}, jnp.zeros((4,), jnp.int32))
    with pytest.raises(ValueError, match="gpt: 20 positions exceed the context of 16"):
        gpt(CFG).apply(params, {}, jnp.zeros((1, 20), jnp.int32))
    with pytest.raises(ValueError, match="generate: 17 positions exceed the context of 16"):
        generate(params, CFG, ids[:, :5], 12, None, temperature=0.0)
    with pytest.raises(ValueError, match="generate: sampling with temperature > 0 needs a key"):
        generate(params, CFG, ids[:, :5], 2, None)
    with pytest.raises(ValueError, match="init_cache: max_len must be an int in 1..context=16"):
        init_cache(CFG, 1, 17)
    with pytest.raises(ValueError, match="decode_step: token_ids have batch 3 but the cache"):
        decode_step(params, CFG, init_cache(CFG, 2, 8), ids[:, :1], 0)
    logits, _ = decode_step(params, CFG, init_cache(CFG, 3, 4), ids[:, :2], 3)  # past the cache
    assert np.isnan(np.asarray(logits)).all()
