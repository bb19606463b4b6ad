"""The RAG reader's copy task alone: does a small character GPT learn to look back and copy?

Rows "random-letter passage ⏎⏎ a window of it → the word that follows the window there"
(``experiments.rag_reader.copy_stage``), the loss on the window's characters after its first
and on the word's. No language model can predict random letters, so the loss falls below
≈ ln 26 (a guess among the letters) only when the model finds the window's earlier occurrence
and copies what follows it: an induction circuit, which forms in a sudden drop of the loss.
Each variant (positions, RoPE base, heads, previous-token embeddings) trains from the same seed on the same stages
(passage chars, prefix chars, row length, batch, steps), one AdamW warmup-cosine schedule over
all of them, and reports its loss every 25 steps and, after each stage, its cross-entropy on the
answers of held-out copy rows of the stage's own format and of the reader's full format
(``copy_nats``: 192-character passages, 48-character prefixes, 256-character rows).

    python -m experiments.rag_copy --workdir=runs/rag_copy [--quick]
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np


@dataclasses.dataclass(frozen=True)
class Config:
    """The model, the stages of copy rows, and the variants compared."""

    num_layers: int = 2
    d_model: int = 64
    context: int = 256
    learning_rate: float = 3e-3
    stages: tuple = ((32, 12, 64, 64, 400),)  # (passage chars, prefix chars, row length, batch, steps)
    # (positions, rope base, heads, previous-token embeddings: GPTConfig.prev_tokens)
    variants: tuple = (("learned", 10000.0, 4, 0), ("rotary", 10000.0, 4, 0), ("rotary", 10000.0, 4, 2))
    passage_chars: int = 192  # the full format of copy_nats
    prefix_chars: int = 48
    suffix_chars: int = 24


QUICK = Config(d_model=16, context=64, stages=((32, 12, 64, 4, 4),), passage_chars=32, prefix_chars=12)


def train_variant(config: Config, vocab, variant: tuple, seed: int) -> dict:
    """One variant trained on ``config.stages``: {'curve' (loss every 25 steps), 'stage_nats'
    and 'full_nats' (copy answer nats after each stage, on its format and on the full one),
    'seconds'}."""
    from experiments.gpt_text import Config as TextConfig, make_optimizer
    from experiments.rag_reader import copy_nats, copy_stage
    from jdl.losses import softmax_cross_entropy
    from jdl.models.gpt import GPTConfig, gpt
    from jdl.train import init_train_state, make_step

    positions, base, heads, prev = variant
    gpt_config = GPTConfig(vocab_size=vocab.size, context=config.context, num_layers=config.num_layers,
                           d_model=config.d_model, num_heads=heads, positions=positions, rope_base=base,
                           prev_tokens=prev)
    model = gpt(gpt_config)

    def loss_fn(params, state, batch, key):
        x, y, w = batch
        return softmax_cross_entropy(model.apply(params, state, x)[0], y, where=w), (state, {})

    total = sum(s[-1] for s in config.stages)
    optimizer = make_optimizer(TextConfig(learning_rate=config.learning_rate, warmup_steps=min(100, total // 10)), total)
    ts, step = init_train_state(model, optimizer, np.zeros((1, 8), np.int32), seed), make_step(loss_fn, optimizer)
    rng, losses, out, start = np.random.default_rng(seed), [], {"curve": [], "stage_nats": [], "full_nats": []}, time.perf_counter()
    for k, stage in enumerate(config.stages):
        rows = copy_stage(vocab, stage, seed + 3000 + 100 * k)
        for _ in range(stage[-1]):
            ts, metrics = step(ts, rows(rng))
            losses.append(float(metrics["loss"]))
            if len(losses) % 25 == 0:
                out["curve"].append([len(losses), float(np.mean(losses[-25:]))])
        out["stage_nats"].append(copy_nats(ts.params, gpt_config, vocab, *stage[:3], seed))
        out["full_nats"].append(copy_nats(ts.params, gpt_config, vocab, config.passage_chars, config.prefix_chars,
                                          config.context, seed))
        print(f"{variant} stage {k}: loss {np.mean(losses[-25:]):.3f}, copy nats {out['stage_nats'][-1]:.3f} "
              f"(full format {out['full_nats'][-1]:.3f})", flush=True)
    out["seconds"] = time.perf_counter() - start
    return out


def plot(results: dict, workdir: str) -> str:
    """The training loss of each variant against the step."""
    from matplotlib.figure import Figure

    from experiments.common import save_figure

    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    for name, r in results["variants"].items():
        c = np.array(r["curve"]).reshape(-1, 2)
        ax.plot(c[:, 0], c[:, 1], label=name)
    ax.axhline(np.log(26), color="gray", lw=0.8, ls=":", label="ln 26")
    ax.set_xlabel("step")
    ax.set_ylabel("copy rows: loss (nats/char)")
    ax.legend(fontsize=7)
    return save_figure(fig, workdir, "rag_copy.png", dpi=90)


def run(workdir: str, quick: bool = False, seed: int = 0) -> dict:
    """Train every variant; write results.json and rag_copy.png. Returns {'config', 'variants', 'plots'}."""
    from experiments.common import write_results
    from jdl.data import pydoc_vocab

    config, vocab = QUICK if quick else Config(), pydoc_vocab()
    results = {"config": dataclasses.asdict(config),
               "variants": {f"{p}, base {b:g}, {h} heads" + (f", {n} previous-token embeddings" if n else ""):
                            train_variant(config, vocab, (p, b, h, n), seed) for p, b, h, n in config.variants}}
    results["plots"] = [plot(results, workdir)]
    write_results(workdir, results)
    return results


if __name__ == "__main__":
    from experiments import common

    common.main(run, "rag_copy")
