import jax.numpy as jnp
import numpy as np
import pytest

from experiments import attention


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("attention")
    return attention.run(str(workdir), quick=True), workdir


def test_unscaled_logits_have_variance_d_k_and_scaled_ones_variance_1(results):
    sat = results[0]["saturation"]
    d_k = np.asarray(sat["d_k"], float)
    unscaled, scaled = np.asarray(sat["unscaled"]["logit_var"]), np.asarray(sat["scaled"]["logit_var"])
    np.testing.assert_allclose(unscaled / scaled, d_k, rtol=1e-4)  # the same logits, ÷√d_k
    np.testing.assert_allclose(unscaled / d_k, 1.0, atol=0.3)  # Var⟨q, k⟩ = d_k
    np.testing.assert_allclose(scaled, 1.0, atol=0.3)


def test_unscaled_softmax_saturates_and_the_scaled_one_does_not(results):
    sat = results[0]["saturation"]
    h_un, h_sc = np.asarray(sat["unscaled"]["entropy"]), np.asarray(sat["scaled"]["entropy"])
    assert np.all(np.diff(h_un) < 0)  # every doubling of d_k sharpens the weights
    assert h_un[-1] < 0.1 * sat["uniform"]["entropy"]  # d_k = 1024: nearly one-hot
    assert np.ptp(h_sc) < 0.3 and h_sc.min() > 0.8 * sat["uniform"]["entropy"]
    assert sat["unscaled"]["max_weight"][-1] > 0.9
    j_un, j_sc = sat["unscaled"]["median_jacobian_norm"], sat["scaled"]["median_jacobian_norm"]
    assert j_un[-1] < 0.02 * j_sc[-1]  # the gradient through the softmax is gone


def test_softmax_stats_jacobian_is_diag_p_minus_p_pt():
    s = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32) * 2
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    jac = np.stack([np.diag(r) - np.outer(r, r) for r in p])  # (3, 5, 5)
    stats = attention.softmax_stats(jnp.asarray(s))
    np.testing.assert_allclose(stats["jacobian_norm"], np.linalg.norm(jac, axis=(1, 2)).mean(), rtol=1e-5)
    np.testing.assert_allclose(stats["entropy"], -(p * np.log(p)).sum(-1).mean(), rtol=1e-5)


def test_target_mass_is_1_on_the_anti_diagonal_and_1_over_n_for_uniform_weights():
    n = 6
    anti = jnp.eye(n)[::-1][None, None]  # (1, 1, n, n): query t on key n−1−t
    assert float(attention.target_mass(anti)) == 1.0
    np.testing.assert_allclose(attention.target_mass(jnp.full((2, 3, n, n), 1 / n)), 1 / n, rtol=1e-6)
    assert float(attention.target_mass(jnp.eye(n)[None, None])) == 0.0  # the diagonal is wrong


def test_trained_attention_looks_at_the_mirrored_position(results):
    rev, workdir = results[0]["reversal"], results[1]
    n = rev["config"]["seq_len"]
    assert 0.5 / n < rev["before"]["target_mass"] < 2 / n  # untrained: about uniform
    assert rev["after"]["target_mass"] > 0.6  # trained: the anti-diagonal
    assert rev["after"]["exact_match"] > 0.9 and rev["before"]["exact_match"] < 0.01
    assert (workdir / "attention_maps.png").exists() and (workdir / "attention_saturation.png").exists()
