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

import logging
from dataclasses import dataclass

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


MODELS = ("simple_rnn", "lstm", "gru")
TASKS = ("adding", "copy")


@dataclass(frozen=True)
class Config:
    """Training of one (task, model, T) run: Adam with global-norm clipping on fresh batches,
    evaluated every ``eval_every`` steps on ``n_test`` held-out sequences, stopped when solved."""
    hidden: int = 64
    batch: int = 64
    lr: float = 3e-3
    clip: float = 1.0
    max_steps: int = 2000
    eval_every: int = 100
    n_test: int = 512
    copy_length: int = 5
    n_symbols: int = 8
    adding_solved: float = 0.01   # test MSE below this
    copy_solved: float = 0.95     # recall accuracy at or above this


def make_model(name: str, task: str, cfg: Config):
    """One recurrent layer of ``cfg.hidden`` units and a Dense read-out: the last state → 1 number
    (adding), every step → A + 2 logits (copy)."""
    from jdl import nn

    layers = {"simple_rnn": nn.SimpleRNN, "lstm": nn.LSTM, "gru": nn.GRU}
    if name not in layers:
        raise ValueError(f"memory_tasks: unknown model {name!r}; known: {', '.join(layers)}")
    if task == "adding":
        return nn.serial(layers[name](cfg.hidden, return_sequences=False), nn.Dense(1))
    return nn.serial(layers[name](cfg.hidden), nn.Dense(cfg.n_symbols + 2))


def task_batch(task: str, n: int, seq_len: int, seed, cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """A batch the model reads: adding as generated; copy as one-hot inputs (n, L, A + 2) and
    the K recalled symbols (n, K) as targets."""
    if task == "adding":
        return adding_task(n, seq_len, seed)
    x, y = copy_task(n, seq_len, seed, cfg.copy_length, cfg.n_symbols)
    return np.eye(cfg.n_symbols + 2, dtype=np.float32)[x], y[:, -cfg.copy_length:]


def task_objective(model, task: str, cfg: Config):
    """``(loss_fn, metric)``: the ``make_step`` loss (MSE, or cross-entropy over the recall
    window) and the test metric (MSE, or the fraction of recalled symbols right)."""
    import jax.numpy as jnp

    from jdl.losses import mse, softmax_cross_entropy

    def outputs(params, state, x):
        out, state = model.apply(params, state, x)
        return (out if task == "adding" else out[:, -cfg.copy_length:]), state  # (B, 1) | (B, K, V)

    def loss_fn(params, state, batch, key):
        del key
        out, state = outputs(params, state, batch[0])
        loss = mse(out, batch[1]) if task == "adding" else softmax_cross_entropy(out, batch[1])
        return loss, (state, {})

    def metric(params, state, x, y):
        out, _ = outputs(params, state, x)
        return mse(out, y) if task == "adding" else jnp.mean(jnp.argmax(out, -1) == y)

    return loss_fn, metric


def is_solved(task: str, value: float, cfg: Config) -> bool:
    """The bar: test MSE < ``cfg.adding_solved`` (adding), recall ≥ ``cfg.copy_solved`` (copy)."""
    return value < cfg.adding_solved if task == "adding" else value >= cfg.copy_solved


def train_one(task: str, name: str, seq_len: int, cfg: Config, seed: int) -> dict:
    """Train ``name`` on ``task`` at T = ``seq_len`` on fresh batches (seeds [seed, 1, step]) and
    evaluate every ``cfg.eval_every`` steps on one test set (seed [seed, 0]) until solved or
    ``cfg.max_steps``. Returns the test curve, the mean training loss between evaluations, the
    final metric and ``solved_at`` (the first step that met the bar, or None)."""
    import jax

    import jdl

    model = make_model(name, task, cfg)
    loss_fn, metric = task_objective(model, task, cfg)
    opt = jdl.optim.chain(jdl.optim.clip_by_global_norm(cfg.clip), jdl.optim.adam(cfg.lr))
    x_test, y_test = task_batch(task, cfg.n_test, seq_len, [seed, 0], cfg)
    ts = jdl.train.init_train_state(model, opt, x_test[:1], seed=seed)
    step, evaluate = jdl.train.make_step(loss_fn, opt), jax.jit(metric)
    steps, curve, train_loss, pending, solved_at = [], [], [], [], None
    for t in range(cfg.max_steps + 1):
        if t % cfg.eval_every == 0:
            steps.append(t)
            curve.append(float(evaluate(ts.params, ts.state, x_test, y_test)))
            train_loss.append(float(np.mean(jax.device_get(pending))) if pending else None)
            pending = []
            if is_solved(task, curve[-1], cfg):
                solved_at = t
                break
        if t == cfg.max_steps:
            break
        ts, metrics = step(ts, task_batch(task, cfg.batch, seq_len, [seed, 1, t], cfg))
        pending.append(metrics["loss"])
    logging.info("memory_tasks: %s %s T=%d: %.4g after %d steps (solved at %s)", task, name, seq_len,
                 curve[-1], steps[-1], solved_at)
    return {"steps": steps, "test_metric": curve, "train_loss": train_loss, "final": curve[-1],
            "solved_at": solved_at, "params": jdl.param_count(ts.params)}


def plot(runs: dict, cfg: Config, seq_lens: tuple[int, ...], workdir: str) -> str:
    """Test MSE (adding, log scale) and recall (copy) against training step, one panel per
    (task, T), with chance and the 'solved' bar."""
    from matplotlib.figure import Figure

    from experiments import common

    fig = Figure(figsize=(4.6 * len(seq_lens), 7))
    axes = fig.subplots(2, len(seq_lens), squeeze=False)
    for row, task in enumerate(TASKS):
        chance, bar = (1 / 6, cfg.adding_solved) if task == "adding" else (1 / cfg.n_symbols, cfg.copy_solved)
        for col, T in enumerate(seq_lens):
            ax = axes[row, col]
            for name in MODELS:
                r = runs[task][str(T)][name]
                ax.plot(r["steps"], r["test_metric"], marker=".", ms=3, label=f"{name} ({r['final']:.3g})")
            ax.axhline(chance, color="gray", ls=":", lw=1, label="chance")
            ax.axhline(bar, color="k", ls="--", lw=0.8, label="solved")
            if task == "adding":
                ax.set_yscale("log")
            ax.set(title=f"{task}, T = {T}", xlabel="step",
                   ylabel="test MSE" if task == "adding" else f"recall of {cfg.copy_length} symbols")
            ax.legend(fontsize=7)
    return common.save_figure(fig, workdir, "memory_tasks.png")


def table(runs: dict) -> dict:
    """{task: {T: {model: 'solved at step s' or the final metric}}}, for the docs and the report."""
    return {task: {T: {name: (f"solved at {r['solved_at']}" if r["solved_at"] is not None else f"{r['final']:.3g}")
                       for name, r in by_model.items()} for T, by_model in by_T.items()}
            for task, by_T in runs.items()}


def run(workdir: str, quick: bool = False, seed: int = 0, seq_lens: str = "10,50,100") -> dict:
    """Every task × T × model; writes results.json and memory_tasks.png. ``quick``: T = 5 and
    60 steps, to check that everything runs."""
    from experiments import common

    cfg = Config(hidden=16, max_steps=60, eval_every=20, n_test=64) if quick else Config()
    lens = (5,) if quick else tuple(int(t) for t in seq_lens.split(","))
    runs = {task: {str(T): {name: train_one(task, name, T, cfg, seed) for name in MODELS} for T in lens}
            for task in TASKS}
    results = {"config": cfg.__dict__, "seed": seed, "seq_lens": list(lens), "table": table(runs),
               "chance": {"adding_mse": chance_adding_mse(100_000, max(lens), seed), "copy_recall": 1 / cfg.n_symbols},
               "runs": runs}
    results["plot"] = plot(runs, cfg, lens, workdir)
    common.write_results(workdir, results)
    return results


if __name__ == "__main__":
    from absl import flags

    from experiments import common

    flags.DEFINE_string("seq_lens", "10,50,100", "Comma-separated sequence lengths T (copy: the delay).")
    common.main(run, "memory_tasks")
