import numpy as np
import pytest

from experiments import scaling_cost


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("scaling_cost")
    return scaling_cost.run(str(workdir), quick=True), workdir


def _series(r, layer, what):
    return np.asarray(scaling_cost.series(r["rows"], layer, r["d"][0], what), float)


def test_xla_flops_match_three_times_the_forward_formula(results):
    r = results[0]
    d, ns = r["d"][0], np.asarray(r["n"])
    for layer in scaling_cost.LAYERS:  # forward + backward ≈ 3 × forward (two matmuls per matmul)
        theory = [3 * r["batch"] * scaling_cost.theory_flops(layer, n, d) for n in ns]
        np.testing.assert_allclose(_series(r, layer, "flops"), theory, rtol=0.12, err_msg=layer)


def test_attention_over_rnn_flop_ratio_grows_linearly_in_n(results):
    r = results[0]
    ns = np.asarray(r["n"], float)
    ratio = _series(r, "attention", "flops") / _series(r, "rnn", "flops")
    np.testing.assert_allclose(ratio[1:] / ratio[:-1], ns[1:] / ns[:-1], rtol=0.1)
    (n_star,) = r["crossovers"][r["d"][0]]["attention/rnn"]["flops"]
    assert abs(n_star / r["d"][0] - 1) < 0.25  # FLOPs cross at n ≈ d


def test_attention_memory_grows_quadratically_and_the_rnn_s_linearly(results):
    r = results[0]
    ns = np.asarray(r["n"], float)
    growth = ns[-1] / ns[-2]
    attn, rnn = _series(r, "attention", "temp_bytes"), _series(r, "rnn", "temp_bytes")
    assert attn[-1] / attn[-2] > 0.8 * growth ** 2  # the (B, n, n) weights kept for backward
    assert rnn[-1] / rnn[-2] < 1.3 * growth
    assert np.all(_series(r, "lstm", "cpu_ms") > 0) and np.all(np.isfinite(_series(r, "mha", "cpu_ms")))
    assert (results[1] / "scaling_cost.png").exists()


def test_the_loop_step_is_counted_the_same_from_unroll_2_and_4(results):
    body = results[0]["loop_body_flops"][results[0]["d"][0]]
    for layer in ("rnn", "lstm"):
        assert body["loop_body_flops"][layer] > 0
        np.testing.assert_allclose(body["loop_body_flops_unroll4"][layer], body["loop_body_flops"][layer],
                                   rtol=0.05)


def test_crossover_of_power_laws_and_the_theory():
    ns = [16, 64, 256, 1024]
    assert scaling_cost.crossover(ns, [n * n for n in ns], [100 * n for n in ns]) == pytest.approx([100])
    assert scaling_cost.crossover(ns, [1, 1, 1, 1], [2, 2, 2, 2]) == []
    d = 128
    assert scaling_cost.theory_crossover("attention", "rnn", d) == d
    assert scaling_cost.theory_crossover("attention", "lstm", d) == 4 * d
    assert scaling_cost.theory_crossover("mha", "lstm", d) == 2 * d
    assert scaling_cost.theory_crossover("mha", "rnn", d) is None  # the projections alone cost 2×
