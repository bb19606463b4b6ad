"""SFT: the prompt/response format, the loss masked to response tokens, sequence log-probs and
greedy completion with the KV cache."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.data.text import char_vocab, decode, encode
from jdl.losses import softmax_cross_entropy
from jdl.models.gpt import GPTConfig, gpt
from jdl.train.sft import (
    complete, encode_pairs, masked_lm_loss, next_token_batch, sequence_log_probs, sft_objective,
)
from tests.helpers import draw_normal

VOCAB = char_vocab("Q: abcdefghij\nA0123456789")


def test_encode_pairs_marks_response_and_end_only():
    ids, mask = encode_pairs(VOCAB, [("Q: ab\nA: ", "ba"), ("Q: a\nA: ", "a")], length=14)
    assert ids.shape == mask.shape == (2, 14) and ids.dtype == np.int32
    assert "".join(VOCAB.tokens[i] for i in ids[0, :12]) == "Q: ab\nA: ba\n"
    np.testing.assert_array_equal(mask[0], [0] * 9 + [1, 1, 1] + [0, 0])  # "ba\n"
    np.testing.assert_array_equal(mask[1], [0] * 8 + [1, 1] + [0] * 4)    # "a\n", then padding
    x, y, m = next_token_batch(ids, mask)
    np.testing.assert_array_equal(y[0, :11], ids[0, 1:12])
    np.testing.assert_array_equal(m[0], mask[0, 1:])  # m_t = 1 when the token after x_t is a response token
    with pytest.raises(ValueError, match="encode_pairs: a pair has 12 tokens but length=10"):
        encode_pairs(VOCAB, [("Q: ab\nA: ", "ba")], length=10)


def test_masked_loss_equals_hand_computed_value_on_two_examples():
    # V = 3. Row 0: positions 1, 2 are response; row 1: position 2 only.
    logits = jnp.array([[[9.0, 9.0, 9.0], [0.0, 0.0, 0.0], [math.log(2), 0.0, 0.0]],
                        [[5.0, 0.0, 0.0], [1.0, 2.0, 3.0], [0.0, math.log(3), 0.0]]])
    y = jnp.array([[2, 1, 0], [1, 1, 1]])
    m = jnp.array([[0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    # CE at (0,1): −log(1/3) = log 3;  (0,2): −log(2/4) = log 2;  (1,2): −log(3/5) = log(5/3)
    expected = (math.log(3) + math.log(2) + math.log(5 / 3)) / 3
    np.testing.assert_allclose(float(masked_lm_loss(logits, y, m)), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="masked_lm_loss: the mask has shape"):
        masked_lm_loss(logits, y, m[:, :2])


def test_where_equals_the_unmasked_mean_on_the_selected_rows():
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    logits = draw_normal(k1, (4, 7, 11))
    labels = jax.random.randint(k2, (4, 7), 0, 11)
    mask = jax.random.bernoulli(k3, 0.4, (4, 7))
    sel = np.asarray(mask)
    ours = softmax_cross_entropy(logits, labels, where=mask.astype(jnp.float32))
    ref = softmax_cross_entropy(logits[sel], labels[sel])  # (n_selected, 11) rows, plain mean
    np.testing.assert_allclose(float(ours), float(ref), rtol=1e-6)


def test_prompt_positions_get_exactly_zero_gradient():
    k1, k2 = jax.random.split(jax.random.key(1))
    logits = draw_normal(k1, (2, 6, 5))
    y = jax.random.randint(k2, (2, 6), 0, 5)
    m = jnp.array([[0, 0, 0, 1, 1, 0], [0, 0, 1, 1, 1, 1]], jnp.float32)
    g = jax.grad(masked_lm_loss)(logits, y, m)  # (2, 6, 5)
    assert np.all(np.asarray(g)[np.asarray(m) == 0] == 0.0)  # exactly zero, not merely small
    # on response positions: (softmax(z) − onehot(y)) / Σm
    ref = (jax.nn.softmax(logits) - jax.nn.one_hot(y, 5)) / jnp.sum(m)
    sel = np.asarray(m) == 1
    np.testing.assert_allclose(np.asarray(g)[sel], np.asarray(ref)[sel], atol=1e-7)


@pytest.fixture(scope="module")
def tiny():
    config = GPTConfig(vocab_size=VOCAB.size, context=24, num_layers=1, d_model=16, num_heads=2)
    model = gpt(config)
    params, state = model.init(jax.random.key(2), jnp.zeros((1, 8), jnp.int32))
    return config, model, params, state


def test_prompt_tokens_do_not_change_the_loss_targets(tiny):
    """Changing a prompt token's target changes nothing: the loss and its gradient are equal."""
    _, model, params, state = tiny
    ids, mask = encode_pairs(VOCAB, [("Q: ab\nA: ", "ba"), ("Q: c\nA: ", "c")])
    x, y, m = next_token_batch(ids, mask)
    y2 = np.where(m == 0, (y + 3) % VOCAB.size, y)  # other targets wherever m = 0
    grad = jax.jit(jax.value_and_grad(sft_objective(model), has_aux=True))
    (l1, _), g1 = grad(params, state, (x, y, m), None)
    (l2, _), g2 = grad(params, state, (x, y2, m), None)
    assert float(l1) == float(l2)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), g1, g2)


def test_sequence_log_probs_sum_the_response_tokens(tiny):
    _, model, params, state = tiny
    ids, mask = encode_pairs(VOCAB, [("Q: ab\nA: ", "ba"), ("Q: c\nA: ", "c")])
    x, y, m = next_token_batch(ids, mask)
    logits = model.apply(params, state, x)[0]
    ours = sequence_log_probs(logits, y, m)
    p = np.asarray(jax.nn.log_softmax(logits))
    ref = [sum(p[b, t, y[b, t]] for t in range(y.shape[1]) if m[b, t]) for b in range(2)]
    np.testing.assert_allclose(np.asarray(ours), ref, rtol=1e-5)
    with pytest.raises(ValueError, match="sequence_log_probs: expected logits"):
        sequence_log_probs(logits, y[:, :3], m[:, :3])


def test_complete_equals_greedy_decoding_without_cache(tiny):
    config, model, params, state = tiny
    prompts = ["Q: ab\nA: ", "Q: c\nA: ", "Q: ba\nA: "]  # two lengths
    out = complete(params, config, VOCAB, prompts, 5, stop="\x00")  # no stop: all 5 characters
    forward = jax.jit(lambda ids: model.apply(params, state, ids)[0][0])  # (T, V), one shape

    for prompt, text in zip(prompts, out):
        ids = list(encode(VOCAB, prompt))
        for _ in range(5):  # the reference: argmax of a full causal forward pass (padded) each step
            padded = jnp.asarray([ids + [0] * (config.context - len(ids))])
            ids.append(int(jnp.argmax(forward(padded)[len(ids) - 1])))
        assert text == decode(VOCAB, np.array(ids[len(prompt):]))
