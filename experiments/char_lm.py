"""A character-level LSTM language model on pydoc_text, against count-based baselines.

The model reads a window of characters x_1..x_T and predicts each next one,
p(x_{t+1} | x_1..x_t) = softmax(W_o h_t + b_o) with h_t the LSTM's state after x_t
(``jdl.models.lstm_lm``: Embedding → LSTM → Dense on every step), trained with the per-token
softmax cross-entropy. It is scored in bits per character, bpc = mean CE / ln 2 (log₂ V ≈ 6.7
for V = 104 characters spread evenly): validation bpc after every epoch, test bpc once, at the
end. The baselines, fitted on the same training text and scored on the same (x, y) windows:
the add-one unigram, the add-k bigram (k = 1, and k tuned on validation) and the interpolated
Kneser–Ney bigram (``jdl.models.ngram``). A bigram sees one character of context; the LSTM
sees the whole window (and, scored with its state carried through the stream, everything
before). Every epoch the model writes a sample from a prompt at temperatures 0.5 and 1.0
(``jdl.models.generate``: the state carried step by step).

    python -m experiments.char_lm --workdir=runs/char_lm [--quick] [--epochs=N] [--hidden=H]
"""

from __future__ import annotations

import dataclasses
import math
import os
import time

import numpy as np

LN2 = math.log(2)


@dataclasses.dataclass(frozen=True)
class Config:
    """The run's settings: model sizes, windows, optimizer (Adam with the gradient clipped to a
    global norm), epochs, and the samples written every epoch."""

    kind: str = "lstm"
    embed: int = 64
    hidden: int = 256
    num_layers: int = 1
    dropout: float = 0.0
    seq_len: int = 128
    batch_size: int = 32
    learning_rate: float = 2e-3
    clip_norm: float = 1.0
    epochs: int = 20
    prompt: str = "The "
    sample_len: int = 300
    temperatures: tuple[float, ...] = (0.5, 1.0)
    windows_limit: int | None = None  # keep only the first N windows of each split (quick)


QUICK = Config(embed=16, hidden=64, seq_len=32, epochs=2, sample_len=40, windows_limit=192)


def load_windows(config: Config) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{split: (x, y)} next-character windows of length ``seq_len`` (the first ``windows_limit``)."""
    from jdl import data

    out = {}
    for split in ("train", "validation", "test"):
        x, y = data.load("pydoc_text", split, seq_len=config.seq_len)
        out[split] = (x[:config.windows_limit], y[:config.windows_limit])
    return out


def baselines(windows: dict, vocab_size: int) -> dict[str, dict]:
    """bpc of the count-based models, fitted on the whole training stream, on the validation and
    test windows; add-k's k is chosen on validation among 1, 0.1, 0.01 (plus add-one itself)."""
    from jdl.data import pydoc_ids
    from jdl.models import ngram

    train = pydoc_ids("train")
    tables = {"unigram (add-one)": (ngram.unigram(train, vocab_size), None),
              "bigram, add-one": (ngram.add_k_bigram(train, vocab_size, 1.0), None),
              "bigram, Kneser–Ney (d = 0.75)": (ngram.kneser_ney_bigram(train, vocab_size, 0.75), None)}
    tuned = {k: ngram.add_k_bigram(train, vocab_size, k) for k in (1.0, 0.1, 0.01)}
    score = {k: ngram.ngram_bits_per_char(t, *windows["validation"]) for k, t in tuned.items()}
    best = min(score, key=score.get)
    tables[f"bigram, add-k (k = {best:g}, tuned on validation)"] = (tuned[best], best)
    return {name: {"validation_bpc": ngram.ngram_bits_per_char(t, *windows["validation"]),
                   "test_bpc": ngram.ngram_bits_per_char(t, *windows["test"]), "k": k}
            for name, (t, k) in tables.items()}


def sampler(model, vocab, config: Config, seed: int):
    """``write(params, epoch) -> {temperature: text}``: ``sample_len`` characters after the prompt."""
    import jax
    import jax.numpy as jnp

    from jdl.data.text import decode, encode
    from jdl.models import generate

    prompt = jnp.asarray(encode(vocab, config.prompt))[None, :]  # (1, P)

    def write(params, epoch: int) -> dict[str, str]:
        key = jax.random.fold_in(jax.random.key(seed + 1), epoch)
        return {str(t): config.prompt + decode(vocab, np.asarray(
            generate(model, params, prompt, config.sample_len, jax.random.fold_in(key, i), t))[0])
            for i, t in enumerate(config.temperatures)}

    return write


def train(config: Config, windows: dict, vocab, seed: int) -> dict:
    """Fit the language model with ``jdl.train.fit``; returns curves (bpc), samples per epoch, the
    test bpc (once, at the end) and the trained params."""
    import jdl
    from jdl.losses import softmax_cross_entropy
    from jdl.models import lstm_lm
    from jdl.train import fit

    model = lstm_lm(vocab.size, embed=config.embed, hidden=config.hidden, num_layers=config.num_layers,
                    dropout=config.dropout, kind=config.kind)
    optimizer = jdl.optim.chain(jdl.optim.clip_by_global_norm(config.clip_norm), jdl.optim.adam(config.learning_rate))
    write, samples, epoch_times = sampler(model, vocab, config, seed), [], [time.perf_counter()]

    def on_epoch(epoch: int, record: dict, ts) -> None:
        epoch_times.append(time.perf_counter())
        samples.append({"epoch": epoch, **write(ts.params, epoch)})
        print(f"epoch {record['epoch']}: validation bpc {record['validation_loss'] / LN2:.3f}  "
              f"T=0.5: {samples[-1][str(config.temperatures[0])][:80]!r}", flush=True)

    result = fit(model, softmax_cross_entropy, optimizer, windows["train"], windows["validation"],
                 test_data=windows["test"], epochs=config.epochs, batch_size=config.batch_size, seed=seed,
                 progress=False, callbacks=[on_epoch], tensorboard=False)
    history = result.history
    return {"train_bpc": [h["train_loss"] / LN2 for h in history],
            "validation_bpc": [h["validation_loss"] / LN2 for h in history],
            "validation_accuracy": [h["validation_accuracy"] for h in history],
            "test_bpc": result.test["loss"] / LN2, "test_accuracy": result.test["accuracy"],
            "samples": samples, "params_count": jdl.param_count(result.train_state.params),
            "epoch_seconds": np.diff(epoch_times).tolist(), "model": model,
            "params": result.train_state.params}


def carried_bpc(model, params, ids: np.ndarray, seq_len: int, streams: int = 16) -> float:
    """bpc of a whole split read as ``streams`` contiguous pieces side by side, ``seq_len``
    characters at a time with the recurrent state carried from one chunk to the next
    (``apply(..., carry=, return_carry=True)``), so each prediction sees everything before it in
    its piece, not only its window."""
    import jax
    import jax.numpy as jnp

    from jdl.metrics import bits_per_char

    n = (len(ids) - 1) // (streams * seq_len) * seq_len  # characters per stream, in whole chunks
    x = ids[:streams * n].reshape(streams, n)  # (S, n)
    y = ids[1:streams * n + 1].reshape(streams, n)  # (S, n)

    @jax.jit
    def chunk(params, x, y, carry):
        (logits, carry), _ = model.apply(params, {}, x, carry=carry, return_carry=True)  # (S, T, V)
        return bits_per_char(logits, y), carry

    carry, bits = None, []
    for start in range(0, n, seq_len):
        b, carry = chunk(params, jnp.asarray(x[:, start:start + seq_len]), jnp.asarray(y[:, start:start + seq_len]),
                         carry)
        bits.append(float(b))
    return float(np.mean(bits))


def plot(results: dict, workdir: str) -> str:
    """Validation (and training) bpc per epoch, the baselines' validation bpc as lines."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from experiments.common import save_figure

    lm = results["lm"]
    epochs = np.arange(1, len(lm["validation_bpc"]) + 1)
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    ax.plot(epochs, lm["validation_bpc"], "o-", label=f"{results['config']['kind'].upper()} validation")
    ax.plot(epochs, lm["train_bpc"], "--", color="C0", alpha=0.6, label=f"{results['config']['kind'].upper()} train (mean over the epoch)")
    for i, (name, b) in enumerate(results["baselines"].items()):
        ax.axhline(b["validation_bpc"], ls=":", color=f"C{i + 1}", label=f"{name} ({b['validation_bpc']:.2f})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("bits per character")
    ax.set_title("pydoc_text: validation bits per character")
    ax.legend(fontsize=7)
    return save_figure(fig, workdir, "char_lm.png", dpi=90)


def run(workdir: str, quick: bool = False, seed: int = 0, epochs: int | None = None,
        hidden: int | None = None, kind: str | None = None) -> dict:
    """Train the language model (``Config``; ``QUICK`` with ``quick``, on the first windows only),
    score the baselines and write results.json and char_lm.png. Returns the results:
    {'config', 'data', 'baselines': {name: {validation_bpc, test_bpc}}, 'lm': {curves, test_bpc,
    carried_test_bpc, samples, ...}, 'plots'}."""
    from experiments.common import write_results
    from jdl.data import pydoc_ids, pydoc_info, pydoc_vocab

    config = QUICK if quick else Config()
    overrides = {k: v for k, v in (("epochs", epochs), ("hidden", hidden), ("kind", kind)) if v is not None}
    config = dataclasses.replace(config, **overrides)
    vocab = pydoc_vocab()
    windows = load_windows(config)
    start = time.perf_counter()
    lm = train(config, windows, vocab, seed)
    model, params = lm.pop("model"), lm.pop("params")
    test_ids = pydoc_ids("test")[:None if config.windows_limit is None else config.windows_limit * config.seq_len]
    lm["carried_test_bpc"] = carried_bpc(model, params, test_ids, config.seq_len)
    lm["wall_seconds"] = time.perf_counter() - start
    results = {"config": dataclasses.asdict(config), "data": {**pydoc_info(), "windows": {
        k: list(v[0].shape) for k, v in windows.items()}}, "baselines": baselines(windows, vocab.size), "lm": lm}
    results["plots"] = [plot(results, workdir)]
    write_results(workdir, results)
    return results


if __name__ == "__main__":
    from absl import flags

    from experiments import common

    flags.DEFINE_integer("epochs", None, "Epochs (default: Config's).")
    flags.DEFINE_integer("hidden", None, "The recurrent state size H (default: Config's).")
    flags.DEFINE_enum("kind", None, ["lstm", "gru", "rnn"], "The recurrent layer (default: lstm).")
    common.main(run, "char_lm")
