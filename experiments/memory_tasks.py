"""Which recurrent networks remember: the copy task and the adding task at T = 10, 50, 100.

Two long-memory benchmarks from Hochreiter & Schmidhuber (1997), in the forms of Arjovsky,
Shah & Bengio (2016) and Le, Jaitly & Hinton (2015):

* **adding task**: a sequence of T pairs (value ~ U(0, 1), marker ∈ {0, 1}) with exactly two
  markers, one in each half; the target is the sum of the two marked values. Predicting the
  mean, 1, gives MSE Var(a + b) = 2/12 ≈ 0.167 — chance. *Solved*: test MSE < 0.01.
* **copy task**: K symbols from an alphabet of A, then T − 1 blanks, a cue, and K more blanks;
  from the cue on, the network must output the K symbols in order. Chance recall is 1/A.
  *Solved*: ≥ 95 % of the recalled symbols right.

The course's RNN topic predicts the outcome: a vanilla RNN's gradient through T steps is a
product of T factors diag(1 − h²) W_hh and vanishes (``experiments/rnn_gradients.py``), while
the LSTM's cell state and the GRU's update gate keep an additive path.

    python -m experiments.memory_tasks --workdir=runs/memory_tasks [--quick]
"""

from __future__ import annotations

import numpy as np

BLANK = 0  # copy task: symbols are 1..A, the cue is A + 1


def adding_task(n: int, seq_len: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` adding-task sequences: x[:, t] = (v_t, m_t), v_t ~ U(0, 1), m_t = 1 at one position
    of the first half [0, T/2) and one of the second [T/2, T), else 0; y = Σ_t m_t v_t.

    Shapes: → x (n, T, 2) float32, y (n, 1) float32.

    Args:
        n: number of sequences. seq_len: T ≥ 2. seed: numpy seed; equal seeds give equal data.
    """
    if seq_len < 2:
        raise ValueError(f"adding_task: seq_len must be at least 2 (one marker per half), got {seq_len}")
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, (n, seq_len))
    half = seq_len // 2
    first = rng.integers(0, half, n)
    second = rng.integers(half, seq_len, n)
    markers = np.zeros((n, seq_len))
    markers[np.arange(n), first] = 1.0
    markers[np.arange(n), second] = 1.0
    x = np.stack([values, markers], axis=-1).astype(np.float32)         # (n, T, 2)
    y = (values * markers).sum(axis=1, keepdims=True).astype(np.float32)  # (n, 1)
    return x, y


def copy_task(n: int, delay: int, seed: int, length: int = 5, n_symbols: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """``n`` copy-task sequences of L = delay + 2K tokens (K = ``length``, A = ``n_symbols``):

        x = s_1 … s_K, blank × (delay − 1), cue, blank × K        s_k ~ U{1..A}, cue = A + 1
        y = blank × (delay + K), s_1 … s_K

    so y[:, delay + K + k] = x[:, k]: the symbols come back ``delay`` steps after the last was
    read (the first one on the step after the cue). Tokens are ints in 0..A + 1 (blank = 0).

    Shapes: → x (n, L) int32, y (n, L) int32.

    Args:
        n: number of sequences. delay: T ≥ 1. seed: numpy seed. length: K. n_symbols: A.
    """
    if delay < 1 or length < 1 or n_symbols < 1:
        raise ValueError(f"copy_task: delay, length and n_symbols must be ≥ 1, got {delay}, {length}, {n_symbols}")
    rng = np.random.default_rng(seed)
    symbols = rng.integers(1, n_symbols + 1, (n, length))
    L = delay + 2 * length
    x = np.full((n, L), BLANK, np.int32)
    x[:, :length] = symbols
    x[:, length + delay - 1] = n_symbols + 1                              # the cue
    y = np.full((n, L), BLANK, np.int32)
    y[:, delay + length:] = symbols
    return x, y


def chance_adding_mse(n: int, seq_len: int, seed: int) -> float:
    """The MSE of always predicting E[y] = 1 on ``n`` fresh sequences (→ 1/6 as n grows)."""
    _, y = adding_task(n, seq_len, seed)
    return float(np.mean((y - 1.0) ** 2))
