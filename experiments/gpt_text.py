"""A small character-level GPT on pydoc_text, scored in bits per character beside the LSTM.

The model (``jdl.models.gpt``) reads a window of characters x_1..x_T and predicts every next
one at once, p(x_{t+1} | x_1..x_t) = softmax(LN_f(h_t) W_teᵀ), h_t the output of N Pre-LN
blocks of causal self-attention over the token and learned position embeddings of x_1..x_t
(the course's GPT). It trains on the per-token softmax cross-entropy with AdamW (decay on the
weights only), the gradient clipped to a global norm, and a linear-warmup cosine schedule,
with ``jdl.train.make_step``: every ``eval_every`` steps the whole validation split is scored
(``jdl.train.evaluate``), so the curve is validation bits per character against the step,
bpc = mean CE / ln 2. Every epoch the model writes samples with the KV cache
(``jdl.models.gpt_generate.generate``) at τ = 0.5, τ = 1.0, and τ = 1.0 under top-k and top-p.
The test split is scored once, at the end.

Comparable with ``experiments/char_lm.py``: the validation and test windows are the same —
``jdl.data.load('pydoc_text', split, seq_len=128)``, non-overlapping, each read from nothing
before it (a fresh context for the GPT, a zero state for the LSTM) — and so is the measure.
Training windows may overlap (``stride``). The Kneser–Ney bigram is rescored here on those
windows (``char_lm.baselines``); ``lstm_epochs > 0`` also trains char_lm's LSTM on them in the
same run (``char_lm.train``), so that both models sit in one table.

    python -m experiments.gpt_text --workdir=runs/gpt_text [--quick] [--epochs=N] [--lstm_epochs=N]
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

LN2 = math.log(2)
SAMPLERS = {"τ = 0.5": {"temperature": 0.5}, "τ = 1.0": {"temperature": 1.0},
            "τ = 1.0, top-k 10": {"temperature": 1.0, "top_k": 10},
            "τ = 1.0, top-p 0.9": {"temperature": 1.0, "top_p": 0.9}}


@dataclasses.dataclass(frozen=True)
class Config:
    """The run's settings: the GPT's shape (context = seq_len), windows, optimizer, schedule,
    how often validation is scored, and the samples written every epoch."""

    num_layers: int = 4
    d_model: int = 128
    num_heads: int = 4
    dropout: float = 0.0
    seq_len: int = 128
    stride: int = 64  # training windows start every 64 characters (validation/test: every 128)
    batch_size: int = 32
    learning_rate: float = 2e-3
    warmup_steps: int = 100
    weight_decay: float = 0.1
    clip_norm: float = 1.0
    epochs: int = 4
    eval_every: int = 50
    prompt: str = "The "
    sample_len: int = 124  # prompt + sample fill the context of 128
    windows_limit: int | None = None  # keep only the first N windows of each split (quick)
    lstm_epochs: int = 0  # > 0: also train char_lm's LSTM on the same windows


QUICK = Config(num_layers=1, d_model=32, num_heads=2, seq_len=32, stride=16, learning_rate=1e-2,
               warmup_steps=4, epochs=2, eval_every=4, sample_len=20, windows_limit=192, lstm_epochs=2)


def load_windows(config: Config) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{split: (x, y)}: overlapping training windows (``stride``), and validation and test
    windows exactly as ``char_lm.load_windows`` cuts them (stride = seq_len)."""
    from jdl import data

    out = {}
    for split in ("train", "validation", "test"):
        stride = config.stride if split == "train" else None
        x, y = data.load("pydoc_text", split, seq_len=config.seq_len, stride=stride)
        out[split] = (x[:config.windows_limit], y[:config.windows_limit])
    return out


def make_optimizer(config: Config, total_steps: int):
    """clip_by_global_norm, then AdamW (decay λ on the weights only) under a linear warmup to
    ``learning_rate`` and a cosine decay to 0 at ``total_steps``."""
    from jdl import optim

    warmup = min(config.warmup_steps, total_steps - 1)
    lr = optim.schedules.warmup_cosine_decay_schedule(0.0, config.learning_rate, warmup, max(warmup + 1, total_steps))
    return optim.chain(optim.clip_by_global_norm(config.clip_norm),
                       optim.adamw(lr, weight_decay=config.weight_decay, mask=optim.weights_only))


def sampler(gpt_config, vocab, config: Config, seed: int):
    """``write(params, epoch) -> {sampler name: text}``: ``sample_len`` characters after the
    prompt for each of ``SAMPLERS``, drawn with the KV cache (step i uses fold_in(key, i))."""
    import jax
    import jax.numpy as jnp

    from jdl.data.text import decode, encode
    from jdl.models.gpt_generate import generate

    prompt = jnp.asarray(encode(vocab, config.prompt))[None, :]  # (1, P)

    def write(params, epoch: int) -> dict[str, str]:
        key = jax.random.fold_in(jax.random.key(seed + 1), epoch)
        return {name: config.prompt + decode(vocab, np.asarray(generate(
            params, gpt_config, prompt, config.sample_len, jax.random.fold_in(key, i), **options))[0, prompt.shape[1]:])
            for i, (name, options) in enumerate(SAMPLERS.items())}

    return write


def train(config: Config, windows: dict, vocab, seed: int) -> dict:
    """Train the GPT with ``make_step`` over seeded epochs of minibatches, scoring validation
    every ``eval_every`` steps and at each epoch's end (with the mean training bpc of the last
    ``eval_every`` steps). Returns what results.json holds (JSON-able: the params are counted,
    not returned): {'curve': {step, validation_bpc, train_bpc}, 'epochs', 'samples' (per epoch),
    'test_bpc', 'test_accuracy' (once, at the end), 'params_count', 'steps', 'steps_per_epoch'}."""
    import jax

    import jdl
    from jdl.data.batching import batches, num_batches
    from jdl.losses import softmax_cross_entropy
    from jdl.models.gpt import GPTConfig, gpt
    from jdl.train import evaluate, init_train_state, make_eval_step, make_step, supervised

    gpt_config = GPTConfig(vocab_size=vocab.size, context=config.seq_len, num_layers=config.num_layers,
                           d_model=config.d_model, num_heads=config.num_heads, dropout=config.dropout)
    model = gpt(gpt_config)
    x_train, y_train = windows["train"]
    steps_per_epoch = num_batches(len(x_train), config.batch_size)
    optimizer = make_optimizer(config, config.epochs * steps_per_epoch)
    ts = init_train_state(model, optimizer, x_train[:1], seed)
    step = make_step(supervised(model, softmax_cross_entropy), optimizer)
    eval_step = make_eval_step(model, softmax_cross_entropy)
    bpc = lambda split: evaluate(eval_step, ts.params, ts.state, *windows[split], batch_size=64)["loss"] / LN2
    write = sampler(gpt_config, vocab, config, seed)
    curve = {"step": [0], "validation_bpc": [bpc("validation")], "train_bpc": [float("nan")]}
    epochs, samples, losses, start = [], [], [], time.perf_counter()
    for epoch in range(config.epochs):
        for batch in batches(x_train, y_train, config.batch_size, seed=seed, epoch=epoch):
            ts, metrics = step(ts, batch)
            losses.append(metrics["loss"])
            t = len(losses)
            if t % config.eval_every == 0 or t == (epoch + 1) * steps_per_epoch:
                curve["step"].append(t)
                curve["validation_bpc"].append(bpc("validation"))
                curve["train_bpc"].append(float(np.mean(jax.device_get(losses[-config.eval_every:]))) / LN2)
        epochs.append({"epoch": epoch + 1, "step": len(losses), "validation_bpc": curve["validation_bpc"][-1],
                       "seconds": time.perf_counter() - start})
        samples.append({"epoch": epoch + 1, **write(ts.params, epoch)})
        print(f"epoch {epoch + 1} (step {len(losses)}): validation bpc {epochs[-1]['validation_bpc']:.3f}  "
              f"τ=0.5: {samples[-1]['τ = 0.5'][:80]!r}", flush=True)
    test = evaluate(eval_step, ts.params, ts.state, *windows["test"], batch_size=64)
    return {"curve": curve, "epochs": epochs, "samples": samples, "test_bpc": test["loss"] / LN2,
            "test_accuracy": test["accuracy"], "params_count": jdl.param_count(ts.params),
            "steps": len(losses), "steps_per_epoch": steps_per_epoch}


def lstm(config: Config, windows: dict, vocab, seed: int) -> dict:
    """char_lm's LSTM (its ``Config``, or ``QUICK`` for a quick run) trained ``lstm_epochs``
    on the same non-overlapping windows as char_lm (stride = seq_len): its curves and test bpc."""
    from experiments import char_lm

    quick = config.windows_limit is not None
    lstm_config = dataclasses.replace(char_lm.QUICK if quick else char_lm.Config(), epochs=config.lstm_epochs,
                                      seq_len=config.seq_len, windows_limit=config.windows_limit)
    result = char_lm.train(lstm_config, char_lm.load_windows(lstm_config), vocab, seed)
    for name in ("model", "params"):
        result.pop(name)
    return {"config": dataclasses.asdict(lstm_config), **result}


def comparison(results: dict) -> list[dict]:
    """The one table: test bpc of every model on the same test windows, best last."""
    rows = [{"model": name, "test_bpc": b["test_bpc"], "source": "count table, this run"}
            for name, b in results["baselines"].items() if "Kneser" in name]
    if "lstm" in results:
        rows.append({"model": f"LSTM {results['lstm']['config']['hidden']}", "test_bpc": results["lstm"]["test_bpc"],
                     "source": f"{results['lstm']['config']['epochs']} epochs, this run"})
    c = results["config"]
    rows.append({"model": f"GPT {c['num_layers']}×{c['d_model']}, {c['num_heads']} heads",
                 "test_bpc": results["gpt"]["test_bpc"], "source": f"{results['gpt']['steps']} steps, this run"})
    return sorted(rows, key=lambda r: -r["test_bpc"])


def plot(results: dict, workdir: str) -> str:
    """Validation bpc against the step (and the mean training bpc over each interval), with the
    Kneser–Ney bigram's and, when trained here, the LSTM's final validation bpc as lines."""
    from matplotlib.figure import Figure

    from experiments.common import save_figure

    curve = results["gpt"]["curve"]
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    ax.plot(curve["step"], curve["validation_bpc"], "o-", ms=3, label="GPT validation")
    ax.plot(curve["step"], curve["train_bpc"], "--", color="C0", alpha=0.6, label=f"GPT train (mean of the last {results['config']['eval_every']} steps)")
    for i, (name, b) in enumerate(results["baselines"].items()):
        if "Kneser" in name:
            ax.axhline(b["validation_bpc"], ls=":", color="C1", label=f"{name} ({b['validation_bpc']:.2f})")
    if "lstm" in results:
        v = results["lstm"]["validation_bpc"][-1]
        ax.axhline(v, ls="-.", color="C2", label=f"LSTM validation after {len(results['lstm']['validation_bpc'])} epochs ({v:.2f})")
    ax.set_ylim(top=min(ax.get_ylim()[1], 5.0))
    ax.set_xlabel("step")
    ax.set_ylabel("bits per character")
    ax.set_title("pydoc_text: a character GPT's validation bits per character")
    ax.legend(fontsize=7)
    return save_figure(fig, workdir, "gpt_text.png", dpi=90)


def run(workdir: str, quick: bool = False, seed: int = 0, epochs: int | None = None,
        lstm_epochs: int | None = None) -> dict:
    """Train the GPT (``Config``; ``QUICK`` with ``quick``, on the first windows only), score
    the Kneser–Ney bigram on the same windows, optionally train the LSTM, and write
    results.json and gpt_text.png. Returns {'config', 'data', 'baselines', 'gpt', ['lstm'],
    'table', 'plots'}."""
    from experiments import char_lm
    from experiments.common import write_results
    from jdl.data import pydoc_info, pydoc_vocab

    config = QUICK if quick else Config()
    overrides = {k: v for k, v in (("epochs", epochs), ("lstm_epochs", lstm_epochs)) if v is not None}
    config = dataclasses.replace(config, **overrides)
    vocab = pydoc_vocab()
    windows = load_windows(config)
    start = time.perf_counter()
    results = {"config": dataclasses.asdict(config), "data": {**pydoc_info(), "windows": {
        k: list(v[0].shape) for k, v in windows.items()}}, "gpt": train(config, windows, vocab, seed)}
    results["gpt"]["wall_seconds"] = time.perf_counter() - start
    results["baselines"] = char_lm.baselines({k: windows[k] for k in ("validation", "test")}, vocab.size)
    if config.lstm_epochs:
        results["lstm"] = lstm(config, windows, vocab, seed)
    results["table"] = comparison(results)
    results["plots"] = [plot(results, workdir)]
    write_results(workdir, results)
    return results


if __name__ == "__main__":
    from absl import flags

    from experiments import common

    flags.DEFINE_integer("epochs", None, "GPT epochs (default: Config's).")
    flags.DEFINE_integer("lstm_epochs", None, "Also train char_lm's LSTM this many epochs on the same "
                         "windows (default: 0, none; char_lm's own run is 20).")
    common.main(run, "gpt_text")
