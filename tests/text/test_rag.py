import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.data.text import char_vocab
from jdl.models.gpt import GPTConfig, gpt
from jdl.models.gpt_generate import generate
from jdl.text.rag import greedy_continue, pad_right


def test_ragged_greedy_continuation_equals_the_kv_cached_generate_row_by_row():
    config = GPTConfig(vocab_size=9, context=12, num_layers=1, d_model=8, num_heads=2)
    params, _ = gpt(config).init(jax.random.key(0), jnp.zeros((1, 12), jnp.int32))
    params["wte"]["w"] = params["wte"]["w"] * 40  # sharp logits: no near-ties in the argmax
    prompts = [np.array([1, 2, 3, 4, 5]), np.array([7, 3]), np.array([8, 8, 1, 0, 2, 6, 4])]
    ids = np.zeros((3, 12), np.int32)
    for i, p in enumerate(prompts):
        ids[i, :len(p)] = p
    new = np.asarray(greedy_continue(params, config, ids, np.array([5, 2, 7]), 4))
    for i, p in enumerate(prompts):
        want = np.asarray(generate(params, config, p[None], 4, None, temperature=0.0))[0, len(p):]
        np.testing.assert_array_equal(new[i], want)
    with pytest.raises(ValueError, match="length \\+ n <= T=12"):
        greedy_continue(params, config, ids, np.array([5, 2, 9]), 4)


def test_greedy_continuation_with_a_constrained_first_token():
    config = GPTConfig(vocab_size=9, context=12, num_layers=1, d_model=8, num_heads=2)
    params, _ = gpt(config).init(jax.random.key(1), jnp.zeros((1, 12), jnp.int32))
    params["wte"]["w"] = params["wte"]["w"] * 40
    ids = np.zeros((2, 12), np.int32)
    ids[0, :4], ids[1, :2] = [1, 2, 3, 4], [7, 3]
    lengths = np.array([4, 2])
    free = np.asarray(greedy_continue(params, config, ids, lengths, 3))
    banned = np.ones(9, bool)
    banned[free[:, 0]] = False  # forbid what each row would write first
    got = np.asarray(greedy_continue(params, config, ids, lengths, 3, first=banned))
    for b, n in enumerate(lengths):  # reference: the argmax over the allowed ids, then free greedy steps
        logits = np.asarray(gpt(config).apply(params, {}, jnp.asarray(ids[b:b + 1, :n]))[0])[0, -1]
        assert got[b, 0] == np.flatnonzero(banned)[np.argmax(logits[banned])] and got[b, 0] != free[b, 0]
        want = generate(params, config, jnp.asarray(np.r_[ids[b, :n], got[b, 0]])[None], 2, None, temperature=0.0)
        np.testing.assert_array_equal(got[b, 1:], np.asarray(want)[0, n + 1:])
    with pytest.raises(ValueError, match="bool mask"):
        greedy_continue(params, config, ids, lengths, 3, first=np.zeros(9, bool))


def test_pad_right_keeps_the_end():
    vocab = char_vocab("abc")
    ids, lengths = pad_right(vocab, ["abcabc", "b"], 4)
    assert ids.tolist() == [[2, 0, 1, 2], [1, 0, 0, 0]]  # "cabc", "b" and lengths.tolist() == [4, 1]


def test_reader_batch_targets_the_masked_word_after_the_context():
    from jdl.data.text import decode
    from jdl.text import Question
    from jdl.text.rag import reader_batch

    vocab = char_vocab("abcdefghijklmnopqrstuvwxyz .\n")
    qs = [Question(0, "the big ", "horse", " ran."), Question(1, "a ", "zebra", "")]
    x, y, w = reader_batch(vocab, ["a horse ran.\n\n", ""], qs, 32, prefix_weight=0.5)
    # row 0: "a horse ran.\n\nthe big horse " — 28 characters, 27 predictions
    assert decode(vocab, x[0, :27]) == "a horse ran.\n\nthe big horse" and decode(vocab, y[0, :27])[-6:] == "horse "
    assert decode(vocab, y[0][w[0] == 1]) == "horse " and decode(vocab, y[0][w[0] == 0.5]) == "he big "
    assert np.all(w[0, 27:] == 0) and np.all(w[0, :13] == 0)  # padding and context carry no loss
    assert decode(vocab, y[1][w[1] == 1]) == "zebra" and decode(vocab, y[1][w[1] == 0.5]) == " "  # no suffix: no end
    x, y, w = reader_batch(vocab, ["a horse ran.\n\n"], qs[:1], 20, prefix_weight=0.0)  # too long: the context's start goes
    assert decode(vocab, y[0]) == ("a horse ran.\n\nthe big horse ")[-20:] and decode(vocab, y[0][w[0] == 1]) == "horse "
    with pytest.raises(ValueError, match="no room"):
        reader_batch(vocab, [""], qs[:1], 4)


def test_best_window_picks_the_window_sharing_the_query_ngrams():
    from jdl.text.embeddings import char_ngram_counts
    from jdl.text.rag import best_window

    passage = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda"
    got = best_window(passage, "theta iota", 12, stride=1)
    assert len(got) == 12 and "theta iota" in got
    # brute force over every start: the chosen window has the highest cosine, the first on ties
    windows = [passage[s:s + 12] for s in range(len(passage) - 11)]
    c = char_ngram_counts(windows + ["theta iota"]).astype(np.float64)
    cos = c[:-1] @ c[-1] / (np.linalg.norm(c[:-1], axis=1) * np.linalg.norm(c[-1]))
    assert got == windows[int(np.argmax(cos))]
    assert best_window(passage, "lambda", 10, stride=4) == passage[-10:]  # the window at the end is a candidate
    assert best_window("short", "x", 10) == "short"
    with pytest.raises(ValueError, match="positive ints"):
        best_window(passage, "x", 0)
