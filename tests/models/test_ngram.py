"""Count-based language models: a hand-computed bigram example (add-k, unigram, Kneser–Ney),
rows that are distributions for any stream, and Kneser–Ney's edge over add-k on held-out text."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jdl.data import pydoc_ids, pydoc_vocab
from jdl.models import ngram

# ids 0 1 0 2 0 1 over V = 3: pairs (0,1) (1,0) (0,2) (2,0) (0,1)
IDS = np.array([0, 1, 0, 2, 0, 1])


def test_bigram_counts_by_hand():
    np.testing.assert_array_equal(ngram.bigram_counts(IDS, 3), [[0, 2, 1], [1, 0, 0], [1, 0, 0]])


def test_unigram_and_add_k_by_hand():
    # n = (3, 2, 1), N = 6: p = (n + 1)/(6 + 3)
    np.testing.assert_allclose(ngram.unigram(IDS, 3), np.tile([4 / 9, 3 / 9, 2 / 9], (3, 1)))
    # (c(a, b) + 1)/(c(a) + 3): c(0) = 3, c(1) = c(2) = 1
    expected = [[1 / 6, 3 / 6, 2 / 6], [2 / 4, 1 / 4, 1 / 4], [2 / 4, 1 / 4, 1 / 4]]
    np.testing.assert_allclose(ngram.add_k_bigram(IDS, 3, k=1.0), expected)


def test_kneser_ney_by_hand():
    # d = 1/2. Distinct pairs N₁₊(••) = 4; distinct predecessors N₁₊(•0) = 2, N₁₊(•1) = N₁₊(•2) = 1,
    # so p_cont = ((2 − ½)/4 + ½·3/4·⅓, (1 − ½)/4 + ⅛, (1 − ½)/4 + ⅛) = (½, ¼, ¼).
    # Row 0: c(0) = 3, N₁₊(0•) = 2, λ = ½·2/3 = ⅓: (0 + ⅓·½, 1.5/3 + ⅓·¼, 0.5/3 + ⅓·¼) = (1/6, 7/12, 1/4).
    # Rows 1, 2: c = 1, one follower (0), λ = ½: (½ + ½·½, ½·¼, ½·¼) = (3/4, 1/8, 1/8).
    expected = [[1 / 6, 7 / 12, 1 / 4], [3 / 4, 1 / 8, 1 / 8], [3 / 4, 1 / 8, 1 / 8]]
    table = ngram.kneser_ney_bigram(IDS, 3, d=0.5)
    np.testing.assert_allclose(table, expected)
    h = ngram.ngram_cross_entropy(table, [0, 1], [1, 0])
    assert h == pytest.approx(-(math.log(7 / 12) + math.log(3 / 4)) / 2)
    assert ngram.ngram_bits_per_char(table, [0, 1], [1, 0]) == pytest.approx(h / math.log(2))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=0, max_size=40), st.floats(0.05, 1.0), st.floats(0.01, 3.0))
def test_every_row_is_a_distribution(ids, d, k):
    ids = np.array(ids, np.int64)
    for table in (ngram.unigram(ids, 6, k), ngram.add_k_bigram(ids, 6, k), ngram.kneser_ney_bigram(ids, 6, d)):
        assert table.shape == (6, 6) and (table > 0).all()
        np.testing.assert_allclose(table.sum(axis=1), 1.0, rtol=1e-12)


def test_kneser_ney_beats_add_one_and_the_bigrams_beat_the_unigram_on_held_out_text():
    v = pydoc_vocab().size
    validation = pydoc_ids("validation")
    for train in (pydoc_ids("train")[:20_000], pydoc_ids("train")):  # sparse counts, then all of them
        bpc = {name: ngram.ngram_bits_per_char(table, validation[:-1], validation[1:])
               for name, table in ngram.fit_baselines(train, v).items()}
        assert bpc["kneser_ney_bigram"] < bpc["add_k_bigram"] < bpc["unigram"] < math.log2(v)


def test_errors_name_the_function_and_the_value():
    with pytest.raises(ValueError, match=r"add_k_bigram: k must be > 0, got 0"):
        ngram.add_k_bigram(IDS, 3, k=0)
    with pytest.raises(ValueError, match=r"kneser_ney_bigram: the discount d must be in \(0, 1.0\]"):
        ngram.kneser_ney_bigram(IDS, 3, d=1.5)
    with pytest.raises(ValueError, match=r"unigram: ids must lie in 0..1 \(vocab_size=2\), got ids from 0 to 2"):
        ngram.unigram(IDS, 2)
    with pytest.raises(TypeError, match=r"bigram_counts: expected a 1-D stream of integer ids"):
        ngram.bigram_counts(np.zeros((2, 3), np.int32), 3)
    with pytest.raises(ValueError, match=r"ngram_cross_entropy: context and targets must have one"):
        ngram.ngram_cross_entropy(np.eye(3), [0, 1], [1])
    with pytest.raises(ValueError, match=r"ngram_cross_entropy: targets must be integer ids in 0..2"):
        ngram.ngram_cross_entropy(np.eye(3), [0, 1], [1, 3])
