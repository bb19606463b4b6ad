import numpy as np
import pytest
import torch

from experiments import memory_tasks


@pytest.mark.parametrize("seq_len", [2, 10, 51])
def test_adding_task_has_one_marker_per_half_and_their_sum_as_target(seq_len):
    x, y = memory_tasks.adding_task(300, seq_len, seed=1)
    assert x.shape == (300, seq_len, 2) and y.shape == (300, 1)
    assert x.dtype == np.float32 and y.dtype == np.float32
    values, markers = x[..., 0], x[..., 1]
    assert np.all((values >= 0) & (values < 1)) and set(np.unique(markers)) <= {0.0, 1.0}
    half = seq_len // 2
    assert np.all(markers[:, :half].sum(1) == 1) and np.all(markers[:, half:].sum(1) == 1)
    for i in range(300):  # the target, recomputed from the marked positions
        a, b = np.flatnonzero(markers[i])
        assert y[i, 0] == pytest.approx(values[i, a] + values[i, b], rel=1e-6)


def test_adding_task_chance_mse_is_one_sixth():
    # Var(a + b) for a, b ~ U(0, 1) independent: 2 · 1/12. The squared error has variance
    # E[(a + b − 1)⁴] − (1/6)² = 1/15 − 1/36, so the Monte Carlo sd at n = 200k is 0.00044
    assert memory_tasks.chance_adding_mse(200_000, 20, seed=1) == pytest.approx(1 / 6, abs=0.002)


def test_copy_task_targets_are_the_inputs_shifted_by_delay_plus_length():
    K, A, T = 5, 8, 13
    x, y = memory_tasks.copy_task(200, T, seed=2, length=K, n_symbols=A)
    assert x.shape == y.shape == (200, T + 2 * K) and x.dtype == np.int32
    np.testing.assert_array_equal(y[:, T + K:], x[:, :K])              # the recall
    assert np.all(y[:, :T + K] == memory_tasks.BLANK)                   # blanks before it
    assert np.all((x[:, :K] >= 1) & (x[:, :K] <= A))
    cue = np.zeros_like(x[0])
    cue[K + T - 1] = 1
    np.testing.assert_array_equal(x[:, K:] == A + 1, np.broadcast_to(cue[K:] == 1, (200, T + K)))
    assert np.all(x[:, K:][x[:, K:] != A + 1] == memory_tasks.BLANK)
    # every symbol appears, with frequency ≈ 1/A
    counts = np.bincount(x[:, :K].ravel(), minlength=A + 1)[1:]
    assert counts.min() > 0.6 * counts.mean()


def test_generators_are_pure_functions_of_their_seed():
    for gen in (lambda s: memory_tasks.adding_task(8, 10, s), lambda s: memory_tasks.copy_task(8, 10, s)):
        a, b, c = gen(3), gen(3), gen(4)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        assert not np.array_equal(a[0], c[0])


def test_bad_lengths_raise():
    with pytest.raises(ValueError, match="adding_task: seq_len must be at least 2"):
        memory_tasks.adding_task(4, 1, seed=0)
    with pytest.raises(ValueError, match="copy_task: delay, length and n_symbols must be ≥ 1"):
        memory_tasks.copy_task(4, 0, seed=0)


def test_quick_run_learns_above_chance_and_writes_its_results(tmp_path):
    r = memory_tasks.run(str(tmp_path), quick=True)
    assert r["chance"]["adding_mse"] == pytest.approx(1 / 6, abs=0.005)
    runs = r["runs"]
    for name in memory_tasks.MODELS:  # 60 steps at T = 5: every model beats chance on both tasks
        adding, copy = runs["adding"]["5"][name], runs["copy"]["5"][name]
        assert adding["final"] < 0.15 and adding["final"] < adding["test_metric"][0]
        assert copy["final"] > 1.5 / r["config"]["n_symbols"]
        assert adding["steps"][-1] == r["config"]["max_steps"] or adding["solved_at"] is not None
    # parameter counts against PyTorch's layers + Linear read-out: jdl keeps one bias where
    # torch.nn.RNN/LSTM keep two (b_ih + b_hh); its reset-after GRU keeps both, as torch does
    H, V = r["config"]["hidden"], r["config"]["n_symbols"] + 2
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert runs["copy"]["5"]["simple_rnn"]["params"] == n(torch.nn.RNN(V, H)) - H + n(torch.nn.Linear(H, V))
    assert runs["copy"]["5"]["lstm"]["params"] == n(torch.nn.LSTM(V, H)) - 4 * H + n(torch.nn.Linear(H, V))
    assert runs["adding"]["5"]["gru"]["params"] == n(torch.nn.GRU(2, H)) + n(torch.nn.Linear(H, 1))
    assert (tmp_path / "memory_tasks.png").exists() and (tmp_path / "results.json").exists()
