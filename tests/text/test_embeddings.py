import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.models.gpt import GPTConfig, gpt
from jdl.text.embeddings import char_ngram_counts, fit_idf, gpt_features, info_nce, tfidf


def test_ngram_counts_by_hand_and_deterministic():
    c = char_ngram_counts(["abcab", "ab"], ns=(2,), buckets=1 << 20)
    assert c.sum(axis=1).tolist() == [4, 1]  # ab bc ca ab | ab
    ab = np.flatnonzero(c[1])
    assert c[0, ab].tolist() == [2] and sorted(c[0][c[0] > 0].tolist()) == [1, 1, 2]
    np.testing.assert_array_equal(char_ngram_counts(["abcab", "ab"], ns=(2,), buckets=1 << 20), c)


def test_tfidf_equals_sklearns_sublinear_smooth_tfidf():
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = ["the cat sat on the mat", "a dog sat", "the dog and the cat", "mat mat mat"]
    ref = TfidfVectorizer(analyzer="char", ngram_range=(3, 3), lowercase=False, sublinear_tf=True,
                          norm=None, smooth_idf=True)
    want = ref.fit_transform(docs).toarray()
    counts = char_ngram_counts(docs, ns=(3,), buckets=1 << 20)
    ours = tfidf(counts, fit_idf(counts))
    cols = [np.flatnonzero(char_ngram_counts([g], ns=(3,), buckets=1 << 20)[0])[0]
            for g in ref.get_feature_names_out()]  # each of sklearn's grams → our hashed column
    assert len(set(cols)) == len(cols) == 29  # no two grams share a column here
    np.testing.assert_allclose(ours[:, cols], want, rtol=1e-5)
    assert ours.sum() == pytest.approx(want.sum(), rel=1e-5)  # nothing outside those columns


@pytest.fixture(scope="module")
def small_gpt():
    config = GPTConfig(vocab_size=11, context=8, num_layers=1, d_model=8, num_heads=2)
    params, _ = gpt(config).init(jax.random.key(0), jnp.zeros((1, 8), jnp.int32))
    return config, params


def test_gpt_features_are_the_mean_hidden_state_deterministic_and_padding_free(small_gpt):
    config, params = small_gpt
    ids = jnp.array([[3, 1, 4, 1, 5, 9, 2, 6], [2, 7, 1, 0, 0, 0, 0, 0]])
    lengths = jnp.array([8, 3])
    e = gpt_features(params, config, ids, lengths)
    np.testing.assert_array_equal(e, gpt_features(params, config, ids, lengths))
    # LN_f(h) W_teᵀ is the model's logits: the pooled features map to the mean of the logits
    logits, _ = gpt(config).apply(params, {}, ids)
    np.testing.assert_allclose(e[0] @ params["wte"]["w"].T, logits[0].mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(e[1] @ params["wte"]["w"].T, logits[1, :3].mean(0), rtol=1e-4, atol=1e-5)
    alone = gpt_features(params, config, ids[1:, :3], lengths[1:])  # the short row alone, unpadded
    np.testing.assert_allclose(alone[0], e[1], rtol=1e-5, atol=1e-6)


def test_info_nce_by_numpy():
    rng = np.random.default_rng(0)
    q, p = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    qn, pn = q / np.linalg.norm(q, axis=1, keepdims=True), p / np.linalg.norm(p, axis=1, keepdims=True)
    s = qn @ pn.T / 0.5

    def ce(z):
        z = z - z.max(axis=1, keepdims=True)
        return -np.mean(np.diag(z) - np.log(np.exp(z).sum(axis=1)))

    np.testing.assert_allclose(info_nce(jnp.asarray(q), jnp.asarray(p), 0.5), 0.5 * (ce(s) + ce(s.T)), rtol=1e-5)
    with pytest.raises(ValueError, match="info_nce: expected q and p of the same shape"):
        info_nce(jnp.ones((4, 3)), jnp.ones((3, 3)))


def test_nt_xent_is_info_nce_plus_the_same_side_negatives():
    """Per view, NT-Xent's denominator adds the other views of its own side to InfoNCE's:
    nt_xent − info_nce = mean over the 2B views of log(1 + Σ_{k≠i} e^{s(q_i,q_k)/τ} / Σ_j e^{s(q_i,p_j)/τ})
    (and the same from the p side), > 0 for B ≥ 2; with B = 1 both are 0."""
    from jdl.contrastive import nt_xent

    rng = np.random.default_rng(1)
    q, p, tau = rng.normal(size=(5, 3)), rng.normal(size=(5, 3)), 0.5
    qn, pn = q / np.linalg.norm(q, axis=1, keepdims=True), p / np.linalg.norm(p, axis=1, keepdims=True)

    def extra(a, b):  # (B,): log(1 + same-side sum / cross sum) of each row of a
        same, cross = np.exp(a @ a.T / tau), np.exp(a @ b.T / tau)
        return np.log1p((same.sum(1) - np.diag(same)) / cross.sum(1))

    gap = np.mean(np.concatenate([extra(qn, pn), extra(pn, qn)]))
    q32, p32 = jnp.asarray(q, jnp.float32), jnp.asarray(p, jnp.float32)
    np.testing.assert_allclose(nt_xent(q32, p32, tau) - info_nce(q32, p32, tau), gap, rtol=1e-5)
    assert gap > 0.1
    assert float(nt_xent(q32[:1], p32[:1], tau)) == 0.0 and float(info_nce(q32[:1], p32[:1], tau)) == 0.0
