"""Greedy, temperature, top-k and top-p on logits: against brute-force numpy definitions,
Hugging Face's logits warpers, and sampling frequencies."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.models.sampling_filters import (
    greedy, next_token, ranks, temperature_logits, top_k_logits, top_p_logits,
)
from tests.helpers import draw_normal


def nucleus_reference(z, p):
    """The smallest set of likeliest tokens with mass ≥ p, by trying sizes 1, 2, … in float64."""
    prob = np.exp(z - z.max())
    prob /= prob.sum()
    order = np.argsort(-z, kind="stable")
    for r in range(1, len(z) + 1):
        if prob[order[:r]].sum() >= p:
            return set(order[:r].tolist())
    return set(order.tolist())


def kept(filtered):
    return set(np.flatnonzero(np.isfinite(np.asarray(filtered))).tolist())


def test_top_k_keeps_exactly_k_even_with_ties():
    z = jnp.array([1.0, 3.0, 3.0, 3.0, 0.0, 3.0])
    for k, expected in [(1, {1}), (2, {1, 2}), (4, {1, 2, 3, 5}), (5, {0, 1, 2, 3, 5}), (9, set(range(6)))]:
        out = top_k_logits(z, k)
        assert kept(out) == expected
        np.testing.assert_array_equal(np.asarray(out)[sorted(expected)], np.asarray(z)[sorted(expected)])
    np.testing.assert_array_equal(np.asarray(ranks(z)), [4, 0, 1, 2, 5, 3])


def test_top_k_matches_sorting_and_batches():
    z = draw_normal(jax.random.key(0), (4, 3, 50))
    out = np.asarray(top_k_logits(z, 7))
    for row, orow in zip(np.asarray(z).reshape(-1, 50), out.reshape(-1, 50)):
        assert kept(orow) == set(np.argsort(-row)[:7].tolist())


def test_top_p_is_the_smallest_set_with_mass_at_least_p():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(40, 12)) * rng.uniform(0.3, 4.0, size=(40, 1))
    p = rng.uniform(0.05, 1.0, size=(40, 1))  # one p per row, broadcast over the tokens
    out = np.asarray(top_p_logits(jnp.asarray(z, jnp.float32), jnp.asarray(p, jnp.float32)))
    for zi, pi, oi in zip(z, p[:, 0], out):
        assert kept(oi) == nucleus_reference(zi, pi)
    z = jnp.log(jnp.array([0.5, 0.25, 0.125, 0.125]))  # exact in binary floating point
    assert kept(top_p_logits(z, 0.5)) == {0}  # 0.5 already reaches p
    assert kept(top_p_logits(z, 0.6)) == {0, 1}
    assert kept(top_p_logits(z, 0.75)) == {0, 1}
    assert kept(top_p_logits(z, 0.8)) == {0, 1, 2}
    assert kept(top_p_logits(z, 1.0)) == {0, 1, 2, 3}
    assert kept(top_p_logits(z, 1e-6)) == {0}  # the likeliest token always survives


@pytest.mark.torch
def test_filters_match_hugging_face_warpers():
    torch = pytest.importorskip("torch")
    gen = pytest.importorskip("transformers.generation.logits_process")
    z = np.random.default_rng(1).normal(size=(6, 40)).astype(np.float32) * 3
    zt = torch.tensor(z)
    for k in (1, 5, 40):
        ref = gen.TopKLogitsWarper(top_k=k)(None, zt.clone()).numpy()
        np.testing.assert_array_equal(np.isfinite(ref), np.isfinite(np.asarray(top_k_logits(z, k))))
    for p in (0.1, 0.5, 0.9, 0.99):
        ref = gen.TopPLogitsWarper(top_p=p)(None, zt.clone()).numpy()
        np.testing.assert_array_equal(np.isfinite(ref), np.isfinite(np.asarray(top_p_logits(z, p))))
    ref = gen.TemperatureLogitsWarper(0.7)(None, zt.clone()).numpy()
    np.testing.assert_allclose(np.asarray(temperature_logits(z, 0.7)), ref, rtol=1e-6)


def draw(logits, n, **kw):
    keys = jax.random.split(jax.random.key(0), n)
    return np.asarray(jax.jit(jax.vmap(lambda k: next_token(k, logits, **kw)))(keys))


def test_temperature_sampling_frequencies():
    z = jnp.array([1.0, 0.0, -1.0, 2.0])
    n = 20_000
    for tau in (0.5, 1.0, 2.0):
        freq = np.bincount(draw(z, n, temperature=tau), minlength=4) / n
        p = np.asarray(jax.nn.softmax(z / tau))
        np.testing.assert_array_less(np.abs(freq - p), 4 * np.sqrt(p * (1 - p) / n) + 1e-3)


def test_top_k_and_top_p_sampling_stay_in_the_kept_set_with_renormalized_probabilities():
    z = jnp.array([2.0, 1.5, 1.0, 0.5, 0.0, -1.0])
    n = 20_000
    y = draw(z, n, top_k=3, top_p=0.7)  # top-3, then the nucleus of those 3 renormalized
    p3 = np.asarray(jax.nn.softmax(z[:3]))  # ≈ 0.51, 0.31, 0.19: {0, 1} reaches 0.7
    assert set(np.unique(y)) == {0, 1}
    q = p3[:2] / p3[:2].sum()
    freq = np.bincount(y, minlength=2)[:2] / n
    np.testing.assert_array_less(np.abs(freq - q), 4 * np.sqrt(q * (1 - q) / n) + 1e-3)


def test_greedy_and_temperature_zero():
    z = draw_normal(jax.random.key(1), (3, 10))
    np.testing.assert_array_equal(np.asarray(greedy(z)), np.argmax(np.asarray(z), -1))
    np.testing.assert_array_equal(np.asarray(next_token(None, z, 0.0)), np.argmax(np.asarray(z), -1))
    traced = jax.jit(next_token)(jax.random.key(0), z, 0.0)  # τ traced: greedy through jnp.where
    np.testing.assert_array_equal(np.asarray(traced), np.argmax(np.asarray(z), -1))


def test_errors():
    z = jnp.zeros(5)
    with pytest.raises(ValueError, match="top_k_logits: k must be a positive int, got 0"):
        top_k_logits(z, 0)
    with pytest.raises(ValueError, match=r"top_p_logits: p must be in \(0, 1\], got 1.5"):
        top_p_logits(z, 1.5)
    with pytest.raises(ValueError, match="temperature_logits: temperature must be > 0"):
        temperature_logits(z, 0.0)
    with pytest.raises(ValueError, match="next_token: temperature must be >= 0"):
        next_token(jax.random.key(0), z, -1.0)
    with pytest.raises(ValueError, match="needs a key"):
        next_token(None, z, 1.0)
    with pytest.raises(ValueError, match=r"greedy: expected float logits of shape \(..., V\)"):
        greedy(jnp.zeros(5, jnp.int32))
