import numpy as np
import pytest

from jdl.text import cosine_top_k, l2_normalize, recall_at_k


def test_top_k_equals_numpy_argsort_of_cosine_similarity():
    rng = np.random.default_rng(0)
    index, queries = rng.normal(size=(50, 8)) * rng.uniform(0.1, 9, (50, 1)), rng.normal(size=(23, 8))
    scores, ids = cosine_top_k(queries, index, k=7, batch_size=5)  # 23 queries: the last batch padded
    cos = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ (index / np.linalg.norm(index, axis=1, keepdims=True)).T
    want = np.argsort(-cos, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(np.asarray(ids), want)
    np.testing.assert_allclose(np.asarray(scores), np.take_along_axis(cos, want, axis=1), rtol=1e-5, atol=1e-6)
    _, one = cosine_top_k(queries[:1], index, k=7)
    np.testing.assert_array_equal(np.asarray(one), want[:1])


def test_errors_name_the_function_and_shapes():
    with pytest.raises(ValueError, match=r"cosine_top_k: expected queries \(Q, D\).*\(3, 4\) and \(5, 6\)"):
        cosine_top_k(np.ones((3, 4)), np.ones((5, 6)), 1)
    with pytest.raises(ValueError, match="k must be an int in 1..N=5"):
        cosine_top_k(np.ones((3, 4)), np.ones((5, 4)), 6)
    with pytest.raises(ValueError, match="k=3 is outside 1..K=2"):
        recall_at_k(np.zeros((1, 2), int), np.zeros(1, int), (3,))


def test_recall_at_k_by_hand():
    ids = np.array([[4, 1, 2], [0, 3, 9], [7, 8, 5]])
    assert recall_at_k(ids, np.array([4, 9, 6]), (1, 2, 3)) == {1: 1 / 3, 2: 1 / 3, 3: 2 / 3}


def test_l2_normalize_keeps_zero():
    np.testing.assert_allclose(l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]])), [[0.6, 0.8], [0, 0]])
