"""Length generalization on a toy translation task: reverse a string of digits.

    source  3 1 4 1 5            target  5 1 4 1 3 <eos>

An LSTM encoder–decoder (``jdl.models.seq2seq``: the source squeezed into the encoder's final
carry) and two encoder–decoder Transformers (``jdl.models.transformer``: sinusoidal or learned
absolute positions) are trained on lengths 1 … 8 and tested, by exact match of the greedy
output, on every length 1 … 16 — half of which no model has seen. Reversal needs no arithmetic:
output t is source token L − t, so everything hangs on how a model finds positions, and on
knowing where the string ends.

    python -m experiments.seq2seq --workdir=runs/seq2seq [--quick]
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

PAD, BOS, EOS, DIGIT0 = 0, 1, 2, 3  # token ids; digit d is DIGIT0 + d
VOCAB = DIGIT0 + 10


def reversal_data(n: int, min_len: int, max_len: int, width: int, seed) -> dict[str, np.ndarray]:
    """``n`` digit strings of lengths L ~ U{min_len … max_len} and their reversals, padded:

        src     = x_1 … x_L PAD …                       (n, W)      src_mask = src ≠ PAD
        tgt_in  = BOS x_L … x_1 PAD …                   (n, W + 1)  teacher-forced decoder input
        tgt_out = x_L … x_1 EOS PAD …                   (n, W + 1)  labels; tgt_mask: the L + 1 real ones

    with W = ``width``, x_i digit tokens (DIGIT0 + d). A pure function of ``seed`` (an int or a
    list of ints for ``np.random.default_rng``).

    Shapes: → src, src_mask (n, W); tgt_in, tgt_out, tgt_mask (n, W + 1); lengths (n,).

    Args:
      n: number of strings. min_len, max_len: the range of lengths L. width: W ≥ max_len, the
        padded source width. seed: numpy seed.
    """
    if not 1 <= min_len <= max_len <= width:
        raise ValueError(f"reversal_data: need 1 <= min_len <= max_len <= width, got "
                         f"{min_len}, {max_len}, {width}")
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len + 1, n)
    digits = rng.integers(0, 10, (n, width)) + DIGIT0
    pos = np.arange(width)[None, :]                                   # (1, W)
    src_mask = pos < lengths[:, None]                                 # (n, W)
    src = np.where(src_mask, digits, PAD).astype(np.int32)
    rev = np.take_along_axis(src, np.clip(lengths[:, None] - 1 - pos, 0, width - 1), axis=1)
    rev = np.where(src_mask, rev, PAD)                                # x_L … x_1 PAD …  (n, W)
    tgt_out = np.concatenate([rev, np.full((n, 1), PAD)], axis=1).astype(np.int32)
    tgt_out[np.arange(n), lengths] = EOS                              # (n, W + 1)
    tgt_in = np.concatenate([np.full((n, 1), BOS), rev], axis=1).astype(np.int32)
    return {"src": src, "src_mask": src_mask, "tgt_in": tgt_in, "tgt_out": tgt_out,
            "tgt_mask": np.arange(width + 1)[None, :] <= lengths[:, None], "lengths": lengths}


@dataclass(frozen=True)
class Config:
    """Train on lengths ``train_min`` … ``train_max`` (fresh batches each step), test on
    ``n_test`` strings of every length 1 … ``test_max``. Adam with warmup and cosine decay after
    global-norm clipping. Transformers: ``d_model``, ``layers`` encoder and decoder blocks
    (Pre-LN, no dropout); LSTM: ``hidden`` units, ``lstm_layers`` deep, embeddings ``d_embed``."""
    train_min: int = 1
    train_max: int = 8
    test_max: int = 16
    n_test: int = 200
    steps: int = 2000
    batch: int = 64
    lr: float = 1e-3
    warmup: int = 200
    clip: float = 1.0
    d_model: int = 64
    heads: int = 4
    layers: int = 2
    d_ff: int = 256
    hidden: int = 128
    lstm_layers: int = 1
    d_embed: int = 64


MODELS = ("lstm", "transformer_sinusoidal", "transformer_learned")


def make_model(name: str, cfg: Config):
    """``(module, decode)``: the model and its greedy decoder
    ``decode(params, src, src_mask, length) -> (B, length)`` token ids."""
    from jdl import models

    if name == "lstm":
        c = models.Seq2SeqConfig(VOCAB, VOCAB, d_embed=cfg.d_embed, hidden=cfg.hidden, num_layers=cfg.lstm_layers)
        return models.lstm_encoder_decoder(c), lambda p, s, m, n: models.lstm_greedy_decode(c, p, s, BOS, n, src_mask=m)
    if name not in MODELS:
        raise ValueError(f"seq2seq: unknown model {name!r}; known: {', '.join(MODELS)}")
    c = models.TransformerConfig(VOCAB, VOCAB, d_model=cfg.d_model, num_heads=cfg.heads, num_layers=cfg.layers,
                                 d_ff=cfg.d_ff, dropout=0.0, positions=name.split("_")[1],
                                 max_len=cfg.test_max + 1)
    return models.encoder_decoder(c), lambda p, s, m, n: models.greedy_decode(c, p, s, BOS, n, src_mask=m)


def sequence_loss(model):
    """The ``make_step`` loss: token cross-entropy of the teacher-forced logits over the real
    target tokens (EOS included, padding excluded), with their accuracy."""
    import jax.numpy as jnp

    from jdl.losses import softmax_cross_entropy

    def loss_fn(params, state, batch, key):
        logits, state = model.apply(params, state, (batch["src"], batch["tgt_in"]), src_mask=batch["src_mask"],
                                    key=key, train=True)  # (B, T, V)
        right = (jnp.argmax(logits, -1) == batch["tgt_out"]) & batch["tgt_mask"]
        return (softmax_cross_entropy(logits, batch["tgt_out"], where=batch["tgt_mask"]),
                (state, {"token_accuracy": jnp.sum(right) / jnp.sum(batch["tgt_mask"])}))

    return loss_fn


def score(pred: np.ndarray, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per example: ``exact`` (every real target token right, EOS at L included; what follows
    EOS is ignored), ``tokens`` (the fraction of those L + 1 right) and ``out_len`` (the position
    of the first EOS in the output: the length the model wrote; W + 1 when it wrote none)."""
    right = (pred == data["tgt_out"]) | ~data["tgt_mask"]
    eos = pred == EOS
    out_len = np.where(eos.any(1), eos.argmax(1), pred.shape[1])
    tokens = ((pred == data["tgt_out"]) & data["tgt_mask"]).sum(1) / data["tgt_mask"].sum(1)
    return {"exact": right.all(1), "tokens": tokens, "out_len": out_len}


def evaluate(decode, params, cfg: Config, seed: int) -> dict[str, list]:
    """Greedy outputs on ``cfg.n_test`` strings of each length 1 … test_max (seed [seed, 0, L]),
    padded to test_max; the mean of each ``score`` per length."""
    import jax

    fn = jax.jit(lambda p, s, m: decode(p, s, m, cfg.test_max + 1))
    per_len: dict[str, list] = {"exact_match": [], "token_accuracy": [], "output_length": []}
    for L in range(1, cfg.test_max + 1):
        data = reversal_data(cfg.n_test, L, L, cfg.test_max, [seed, 0, L])
        s = score(np.asarray(fn(params, data["src"], data["src_mask"])), data)
        for key, value in zip(per_len, (s["exact"], s["tokens"], s["out_len"])):
            per_len[key].append(float(value.mean()))
    return per_len


def train_one(name: str, cfg: Config, seed: int) -> dict:
    """Train ``name`` for ``cfg.steps`` steps on fresh batches (seed [seed, 1, t]), then
    ``evaluate``; the mean loss per 100 steps (per steps/4 when fewer), parameters and
    training time."""
    import jax

    import jdl

    log_every = max(1, min(100, cfg.steps // 4))
    model, decode = make_model(name, cfg)
    lr = jdl.optim.warmup_cosine_decay_schedule(0.0, cfg.lr, cfg.warmup, cfg.steps)
    opt = jdl.optim.chain(jdl.optim.clip_by_global_norm(cfg.clip), jdl.optim.adam(lr))
    batch = lambda t: reversal_data(cfg.batch, cfg.train_min, cfg.train_max, cfg.train_max, [seed, 1, t])  # noqa: E731
    first = batch(0)
    ts = jdl.train.init_train_state(model, opt, (first["src"], first["tgt_in"]), seed=seed)
    step = jdl.train.make_step(sequence_loss(model), opt)
    losses, pending, start = [], [], time.perf_counter()
    for t in range(cfg.steps):
        ts, metrics = step(ts, batch(t))
        pending.append(metrics["loss"])
        if len(pending) == log_every or t == cfg.steps - 1:
            losses.append(float(np.mean(jax.device_get(pending))))
            pending = []
    train_seconds = time.perf_counter() - start
    result = {"params": jdl.param_count(ts.params), "train_seconds": train_seconds,
              "loss_steps": [min((i + 1) * log_every, cfg.steps) for i in range(len(losses))], "loss": losses,
              **evaluate(decode, ts.params, cfg, seed)}
    logging.info("seq2seq: %s seed %d: %d params, %.0f s; exact match by length %s", name, seed,
                 result["params"], train_seconds, np.round(result["exact_match"], 2))
    return result


def summarize(runs: dict, cfg: Config) -> dict:
    """Per model: exact match per length averaged over seeds, and the mean over the trained and
    the unseen lengths."""
    table = {}
    for name, by_seed in runs.items():
        em = np.mean([r["exact_match"] for r in by_seed.values()], axis=0)
        table[name] = {"exact_match": em.round(4).tolist(),
                       "seen": float(em[:cfg.train_max].mean()), "unseen": float(em[cfg.train_max:].mean()),
                       "params": next(iter(by_seed.values()))["params"],
                       "train_seconds": float(np.mean([r["train_seconds"] for r in by_seed.values()]))}
    return table


def plot(runs: dict, cfg: Config, workdir: str) -> str:
    """Exact match, token accuracy and output length against the test length (one line per
    model and seed; training lengths shaded), and the training loss."""
    from matplotlib.figure import Figure

    from experiments import common

    fig = Figure(figsize=(17, 4))
    axes = fig.subplots(1, 4)
    lengths = np.arange(1, cfg.test_max + 1)
    colors = dict(zip(MODELS, ("C0", "C1", "C2")))
    for name, by_seed in runs.items():
        for i, (seed, r) in enumerate(by_seed.items()):
            label = name if i == 0 else None
            for ax, key in zip(axes, ("exact_match", "token_accuracy", "output_length")):
                ax.plot(lengths, r[key], marker=".", color=colors[name], alpha=0.8, label=label)
            axes[3].semilogy(r["loss_steps"], r["loss"], color=colors[name], alpha=0.8, label=label)
    axes[2].plot(lengths, lengths, "k:", lw=1, label="right length")
    for ax, ylabel in zip(axes[:3], ("exact match", "token accuracy (L + 1 tokens)", "output length (first EOS)")):
        ax.axvspan(cfg.train_min - 0.5, cfg.train_max + 0.5, color="gray", alpha=0.15)
        ax.set(xlabel="source length L (shaded: trained)", ylabel=ylabel)
    axes[3].set(xlabel="step", ylabel="training loss (token cross-entropy)")
    for ax in axes:
        ax.legend(fontsize=7)
    return common.save_figure(fig, workdir, "seq2seq.png")


def run(workdir: str, quick: bool = False, seed: int = 0, seeds: int = 2, models: str = ",".join(MODELS)) -> dict:
    """Every model × seed (seed, seed + 1, …); writes results.json and seq2seq.png. ``quick``:
    tiny models, 40 steps, train lengths 1 … 4 and test 1 … 6, one seed."""
    from experiments import common

    cfg = (Config(train_max=4, test_max=6, n_test=32, steps=40, warmup=10, batch=32, lr=3e-3, d_model=32,
                  layers=1, d_ff=64, hidden=32, d_embed=16) if quick else Config())
    names = tuple(models.split(","))
    seed_list = [seed] if quick else list(range(seed, seed + seeds))
    runs = {name: {str(s): train_one(name, cfg, s) for s in seed_list} for name in names}
    results = {"config": cfg.__dict__, "seeds": seed_list, "table": summarize(runs, cfg), "runs": runs,
               "tokens": {"pad": PAD, "bos": BOS, "eos": EOS, "digit0": DIGIT0}}
    results["plot"] = plot(runs, cfg, workdir)
    common.write_results(workdir, results)
    return results


if __name__ == "__main__":
    from absl import flags

    from experiments import common

    flags.DEFINE_integer("seeds", 2, "Seeds per model: seed, seed + 1, …")
    flags.DEFINE_string("models", ",".join(MODELS), "Comma-separated models to train.")
    common.main(run, "seq2seq")
