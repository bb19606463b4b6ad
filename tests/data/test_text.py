"""Text to tensors: vocabularies, encode/decode, one-hot, bag of words, windows, and pydoc_text."""

import hashlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl.data import text
from jdl.data.text import Vocab, bag_of_words, char_vocab, decode, encode, one_hot, windows, word_vocab


# --- vocabularies, encode, decode ---

def test_char_vocab_is_sorted_with_the_unknown_last():
    v = char_vocab("banana\n")
    assert v.tokens == ("\n", "a", "b", "n") and v.size == 5 and v.unknown_id == 4
    assert char_vocab(["ban", "ana\n"]) == v  # several pieces count as one text
    assert encode(v, "nab\n").tolist() == [3, 1, 2, 0]


def test_encode_agrees_with_a_dict_lookup_and_round_trips():
    corpus = "Hello, wörld — 𝛼β\n\tend \ud800" * 3  # non-ASCII, outside the BMP, a lone surrogate
    v = char_vocab(corpus)
    ids = encode(v, corpus)
    index = {c: i for i, c in enumerate(v.tokens)}
    assert ids.dtype == np.int32 and ids.shape == (len(corpus),)
    np.testing.assert_array_equal(ids, [index[c] for c in corpus])
    assert decode(v, ids) == corpus
    assert decode(v, jnp.asarray(ids)) == corpus and decode(v, list(ids)) == corpus


def test_characters_outside_the_vocabulary_become_the_unknown():
    v = char_vocab("abc", unknown="?")
    ids = encode(v, "a😀b~")
    assert ids.tolist() == [0, 3, 1, 3]
    assert decode(v, ids) == "a?b?"
    # the unknown symbol itself in the text is not a token: it encodes to the unknown id and decodes back
    v2 = char_vocab("a\ufffdb")
    assert v2.tokens == ("a", "b") and decode(v2, encode(v2, "b\ufffda")) == "b\ufffda"
    assert encode(char_vocab(""), "xy").tolist() == [0, 0]


def test_max_size_keeps_the_most_frequent():
    v = char_vocab("aaaabbbccd", max_size=3)  # a:4 b:3 c:2 d:1 → a, b and the unknown
    assert v.tokens == ("a", "b") and v.size == 3
    assert decode(v, encode(v, "abcd")) == "ab\ufffd\ufffd"
    assert char_vocab("bbaa", max_size=2).tokens == ("a",)  # a tie goes to the lower code point
    with pytest.raises(ValueError, match="char_vocab: max_size must be an int >= 1"):
        char_vocab("ab", max_size=0)


def test_word_vocab_encode_decode_and_unknown():
    assert text.words("Don't stop, DON'T!") == ["don", "t", "stop", "don", "t"]
    v = word_vocab(["The cat sat.", "the dog"])
    assert v.tokens == ("cat", "dog", "sat", "the") and v.unknown == "<unk>" and v.level == "word"
    ids = encode(v, "The DOG sat on the cat")
    assert ids.tolist() == [3, 1, 2, 4, 3, 0]
    assert decode(v, ids) == "the dog sat <unk> the cat"
    assert word_vocab("a b b c c c", max_size=3).tokens == ("b", "c")


def test_vocab_and_decode_refuse_bad_input():
    with pytest.raises(ValueError, match="Vocab: tokens must be sorted and unique"):
        Vocab(("b", "a"))
    with pytest.raises(ValueError, match="Vocab: a 'char' vocabulary holds single characters, got 'ab'"):
        Vocab(("ab",))
    with pytest.raises(ValueError, match="Vocab: the unknown symbol 'a' is also a token"):
        Vocab(("a",), unknown="a")
    with pytest.raises(ValueError, match="Vocab: level must be one of"):
        Vocab(("a",), level="byte")
    with pytest.raises(TypeError, match="Vocab: tokens must be a tuple"):
        Vocab(["a"])
    v = char_vocab("ab")
    with pytest.raises(ValueError, match=r"decode: ids\[1\] = 3 is outside the vocabulary's 0..2"):
        decode(v, np.array([0, 3]))
    with pytest.raises(ValueError, match="outside"):
        decode(v, np.array([-1]))
    with pytest.raises(TypeError, match=r"decode: expected a 1-D array of integer ids"):
        decode(v, np.zeros((2, 2), np.int32))
    with pytest.raises(TypeError, match="decode: expected a 1-D array of integer ids"):
        decode(v, np.array([0.0]))
    with pytest.raises(TypeError, match="encode: expected a string, got list"):
        encode(v, ["a"])
    with pytest.raises(TypeError, match="char_vocab: expected a string or strings"):
        char_vocab([1, 2])


# --- one-hot and bag of words ---

def test_one_hot_matches_jax_for_numpy_and_jax_ids():
    ids = np.array([[0, 2, 4], [1, 5, -1]])  # 5 and -1 fall outside 0..4: rows of zeros
    want = np.asarray(jax.nn.one_hot(ids, 5))
    got = one_hot(ids, 5)
    assert isinstance(got, np.ndarray) and got.shape == (2, 3, 5) and got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    got_jax = jax.jit(lambda i: one_hot(i, 5))(jnp.asarray(ids))
    assert isinstance(got_jax, jax.Array)
    np.testing.assert_array_equal(got_jax, want)
    assert one_hot([3], 4, dtype=np.int32).tolist() == [[0, 0, 0, 1]]
    np.testing.assert_array_equal(one_hot(np.int32(1), 3), [0, 1, 0])  # a scalar id


def test_one_hot_refuses_bad_input():
    with pytest.raises(TypeError, match="one_hot: expected integer ids, got dtype float32"):
        one_hot(np.array([1.0], np.float32), 3)
    with pytest.raises(ValueError, match="one_hot: n .* must be a positive int, got 0"):
        one_hot(np.array([1]), 0)


def test_bag_of_words_matches_scikit_learn_counts():
    from sklearn.feature_extraction.text import CountVectorizer

    train = ["The cat sat on the mat.", "The dog ate the cat's dinner", "a dog, a cat"]
    docs = ["the cat and the dog", "Mat mat MAT zebra", ""]
    v = word_vocab(train)
    bags = bag_of_words(docs, v)
    assert bags.shape == (3, v.size) and bags.dtype == np.float32
    reference = CountVectorizer(vocabulary=list(v.tokens), token_pattern=r"(?u)\w+", lowercase=True)
    known = reference.transform(docs).toarray()  # (D, V − 1): sklearn drops unknown words
    np.testing.assert_array_equal(bags[:, :-1], known)
    n_words = [len(text.words(d)) for d in docs]
    np.testing.assert_array_equal(bags[:, -1], np.array(n_words) - known.sum(axis=1))  # 'and', 'zebra'
    # a bag is the sum of the document's one-hot rows, order forgotten
    for doc, bag in zip(docs, bags):
        np.testing.assert_array_equal(bag, one_hot(encode(v, doc), v.size).sum(axis=0))
    np.testing.assert_array_equal(bag_of_words(["dog the and cat the"], v), bags[:1])


def test_bag_of_words_of_characters_and_errors():
    v = char_vocab("abc")
    np.testing.assert_array_equal(bag_of_words(["abca", "zz"], v), [[2, 1, 1, 0], [0, 0, 0, 2]])
    assert bag_of_words([], v).shape == (0, 4)
    with pytest.raises(TypeError, match=r"bag_of_words: expected a sequence of documents, got one string"):
        bag_of_words("abc", v)


# --- windows ---

@pytest.mark.parametrize("length, seq_len, stride", [(20, 4, None), (20, 4, 1), (21, 4, 3), (5, 4, 2)])
def test_windows_agree_with_a_loop(length, seq_len, stride):
    ids = np.random.default_rng(0).integers(0, 9, length).astype(np.int32)
    x, y = windows(ids, seq_len, stride)
    s = stride or seq_len
    starts = range(0, length - seq_len, s)  # every start whose target window still fits
    np.testing.assert_array_equal(x, [ids[i:i + seq_len] for i in starts])
    np.testing.assert_array_equal(y, [ids[i + 1:i + seq_len + 1] for i in starts])
    assert x.dtype == np.int32 and x.shape == y.shape == (len(starts), seq_len)
    assert x.shape[0] == (length - seq_len - 1) // s + 1


def test_windows_refuse_bad_input():
    with pytest.raises(ValueError, match=r"windows: a stream of 4 ids is too short .* \(needs seq_len \+ 1 = 5"):
        windows(np.arange(4), 4)
    with pytest.raises(ValueError, match="windows: stride must be a positive int, got 0"):
        windows(np.arange(9), 4, 0)
    with pytest.raises(ValueError, match="windows: seq_len must be a positive int"):
        windows(np.arange(9), 0)
    with pytest.raises(TypeError, match=r"windows: expected a 1-D stream of integer ids \(L,\)"):
        windows(np.zeros((3, 3), np.int32), 2)


# --- pydoc_text ---

def test_pydoc_splits_are_contiguous_disjoint_and_cover_the_corpus():
    corpus = jdl.data.pydoc_topics.pydoc_corpus()
    vocab = jdl.data.pydoc_vocab()
    assert vocab.tokens == tuple(sorted(set(corpus))) and vocab.size == len(set(corpus)) + 1
    whole = encode(vocab, corpus)
    parts = [jdl.data.pydoc_ids(s, 0.2) for s in ("train", "validation", "test")]
    np.testing.assert_array_equal(np.concatenate(parts), whole)  # in order, no gap, no overlap
    n = len(corpus)
    published = n - n // 10
    assert [len(p) for p in parts] == [published - round(0.2 * published), round(0.2 * published), n // 10]
    np.testing.assert_array_equal(jdl.data.pydoc_ids("train", 0), whole[:published])
    assert decode(vocab, parts[1]) == corpus[len(parts[0]):published]


def test_load_pydoc_text_windows_are_next_character_pairs():
    ids = jdl.data.pydoc_ids("validation")
    x, y = jdl.data.load("pydoc_text", "validation")
    assert x.shape == y.shape == ((len(ids) - 65) // 64 + 1, 64) and x.dtype == y.dtype == np.int32
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    np.testing.assert_array_equal(x.reshape(-1), ids[:x.size])  # stride T: consecutive, no gaps
    np.testing.assert_array_equal(y[:, -1], ids[64:x.size + 1:64])
    x2, y2 = jdl.data.load("pydoc_text", "test", seq_len=16, stride=8)
    np.testing.assert_array_equal((x2, y2), windows(jdl.data.pydoc_ids("test"), 16, 8))
    assert "pydoc_text" in jdl.data.names()


def test_load_refuses_seq_len_for_other_sets_and_an_empty_validation():
    with pytest.raises(ValueError, match=r"jdl.data.load\('digits'\): seq_len and stride apply to the text sets"):
        jdl.data.load("digits", "train", seq_len=8)
    with pytest.raises(ValueError, match="validation_fraction=0 holds out no validation set"):
        jdl.data.load("pydoc_text", "validation", validation_fraction=0)
    with pytest.raises(ValueError, match="pydoc_text: split must be"):
        jdl.data.pydoc_ids("val")
    with pytest.raises(ValueError, match="pydoc_text: validation_fraction=0 holds out no validation"):
        jdl.data.pydoc_ids("validation", 0)


def test_pydoc_info_describes_the_running_python():
    corpus = jdl.data.pydoc_topics.pydoc_corpus()
    info = jdl.data.pydoc_info()
    assert info["chars"] == len(corpus) and info["python"] == sys.version.split()[0]
    assert info["sha256"] == hashlib.sha256(corpus.encode()).hexdigest()[:16]


@pytest.mark.skipif(sys.version_info[:3] != (3, 11, 7), reason="the documented figures are CPython 3.11.7's")
def test_pydoc_figures_in_the_docs():
    info = jdl.data.pydoc_info()
    assert info == {"python": "3.11.7", "chars": 464970, "vocab_size": 104, "sha256": "37d06970fc926e60"}
    assert [len(jdl.data.pydoc_ids(s)) for s in ("train", "validation", "test")] == [376626, 41847, 46497]
    assert [len(jdl.data.load("pydoc_text", s)[0]) for s in ("train", "validation", "test")] == [5884, 653, 726]
    assert len(jdl.data.load("pydoc_text", "train", validation_fraction=0)[0]) == 6538
