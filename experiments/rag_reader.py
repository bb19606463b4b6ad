"""The reader of ``experiments/rag.py``: a character GPT trained from scratch to write the
masked word of a cloze question after the passage put in front of it (REALM/RAG-style reader
training, ``jdl.text.rag.reader_batch``), on questions from the training passages only.

Two kinds of rows. Corpus rows: a training question after its own passage (share
``reader_mix[0]``), after a random training passage (``reader_mix[1]``) or after nothing.
Copy rows (share ``copy_mix`` of each batch): a question on a passage of random letters, which
no language model can predict and only copying from the context can answer — the gradient that
forms the look-back-and-copy (induction) circuit, which natural text alone gives too weakly for
a CPU budget of steps.

Copy curriculum. Before those rows, ``copy_curriculum`` stages train on copy rows alone, on
short random-letter passages first (e.g. 32 characters in 64-character rows, 64 rows a batch),
then longer ones: the induction circuit forms in a sudden drop of the loss after a few hundred
steps on short rows (within ~300 steps, to ≈ 0.1 nats, once the input holds each character's 2
predecessors, ``GPTConfig(prev_tokens=2)``), and not within thousands on the full 256-character rows. The stages only
carry over to the longer rows with rotary positions (``GPTConfig(positions="rotary")``), whose
attention scores depend on relative positions only; one optimizer and one warmup-cosine
schedule run over all stages.
"""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np

SEP = "\n\n"


def random_letter_passages(rng: np.random.Generator, count: int, chars: int) -> list[str]:
    """``count`` texts of about ``chars`` characters: words of 2–10 random lower-case letters
    separated by spaces, and a full stop, so that every word has a character after it (the end
    a reader must copy too: without it, a question on the last word has no end to learn)."""
    out = []
    for _ in range(count):
        words, n = [], 0
        while n < chars - 11:
            w = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), int(rng.integers(2, 11))))
            words.append(w)
            n += len(w) + 1
        out.append(" ".join(words) + ".")
    return out


def reader_view(config, passage: str | None, q) -> tuple:
    """What the reader reads of a passage and a question: (context, question). With
    ``config.window`` the context is the passage's ``best_window`` of that many characters for
    the question's prefix end and suffix start, and the question's prefix is cut to its last
    ``reader_prefix`` characters; else the whole passage and prefix. Context "" for no passage.
    """
    from jdl.text.rag import best_window

    if not config.window:
        return ("" if passage is None else passage + SEP), q
    short = dataclasses.replace(q, prefix=q.prefix[-config.reader_prefix:])
    if passage is None:
        return "", short
    return best_window(passage, q.prefix[-16:] + " " + q.suffix[:16], config.window) + SEP, short


def reader_rows(config, vocab, corpus: dict, pools: dict, rng: np.random.Generator) -> tuple:
    """One batch (x, y, w) of ``reader_batch`` rows: ⌊copy_mix·B⌉ copy rows, the rest corpus rows."""
    from jdl.text.rag import reader_batch

    B = config.gpt_batch
    n_copy = int(round(config.copy_mix * B))
    copy = [pools["copy"][i] for i in rng.choice(len(pools["copy"]), n_copy)]
    qs = [pools["corpus"][i] for i in rng.choice(len(pools["corpus"]), B - n_copy)]
    kinds = rng.choice(3, B - n_copy, p=[*config.reader_mix, 1 - sum(config.reader_mix)])
    passages = corpus["passages"]
    views = [reader_view(config, pools["copy_passages"][q.passage], q) for q in copy]
    views += [reader_view(config, passages[q.passage] if k == 0 else passages[rng.choice(corpus["train"])] if k == 1
                          else None, q) for q, k in zip(qs, kinds)]
    return reader_batch(vocab, *zip(*views), config.row, config.prefix_weight)


def copy_stage(vocab, stage: tuple, seed: int):
    """``rows(rng) -> (x, y, w)``: batches of copy rows for one curriculum stage
    (passage chars, prefix chars, row length, batch, steps), on min(2000, batch·steps)
    random-letter passages."""
    from jdl.text import masked_word_questions
    from jdl.text.rag import reader_batch

    chars, prefix, length, batch, steps = stage
    fake = random_letter_passages(np.random.default_rng(seed), min(2000, batch * steps), chars)
    qs = [q for r in range(4) for q in masked_word_questions(fake, range(len(fake)), seed + r, prefix, 24)]

    def rows(rng):
        b = [qs[i] for i in rng.choice(len(qs), batch)]
        return reader_batch(vocab, [fake[q.passage] + SEP for q in b], b, length)
    return rows


def copy_nats(params, gpt_config, vocab, chars: int, prefix: int, length: int, seed: int) -> float:
    """The reader's cross-entropy (nats a character) on the answers of 64 held-out copy rows:
    ``chars``-character random-letter passages, ``prefix``-character windows, rows of ``length``:
    ≈ ln 26 without a copy circuit, → 0 with one."""
    from experiments.rag import answer_loss
    from jdl.text import masked_word_questions
    from jdl.text.rag import reader_batch

    fake = random_letter_passages(np.random.default_rng(seed + 7), 64, chars)
    qs = masked_word_questions(fake, range(64), seed + 7, prefix, 24)
    x, y, w = reader_batch(vocab, [fake[q.passage] + SEP for q in qs], qs, length, 0.0)
    return float(answer_loss(gpt_config)(params, x, y, w)) / float(w.sum())


def question_pools(config, corpus: dict, seed: int) -> dict:
    """The reader's training questions: ``reader_rounds`` per training passage, and as many on
    random-letter passages."""
    from jdl.text import masked_word_questions

    rng = np.random.default_rng(seed + 2000)
    fake = random_letter_passages(rng, len(corpus["train"]), config.window or config.passage_chars)
    ask = lambda texts, which, r, prefix: masked_word_questions(texts, which, seed + 1000 + r, prefix, config.suffix_chars)
    copy_prefix = config.reader_prefix if config.window else config.prefix_chars
    return {"corpus": [q for r in range(config.reader_rounds) for q in ask(corpus["passages"], corpus["train"], r,
                                                                            config.prefix_chars)],
            "copy": [q for r in range(config.reader_rounds) for q in ask(fake, range(len(fake)), r, copy_prefix)],
            "copy_passages": fake}


def train_reader(config, vocab, corpus: dict, seed: int, workdir: str) -> tuple:
    """The character GPT (``jdl.models.gpt``, ``config.positions``) trained from scratch on the
    ``copy_curriculum`` stages (``copy_stage``), then ``gpt_steps`` of ``reader_rows``, with AdamW
    under one warmup-cosine schedule over all steps; saved under ``workdir/reader`` (a rerun with
    the same settings reloads it); returns (params, gpt_config, info), info['copy_answer_nats']
    after each stage (``copy_nats``)."""
    from experiments.common import cached
    from experiments.gpt_text import Config as TextConfig, make_optimizer
    from jdl.losses import softmax_cross_entropy
    from jdl.models.gpt import GPTConfig, gpt
    from jdl.train import init_train_state, make_step

    gpt_config = GPTConfig(vocab_size=vocab.size, context=config.context, num_layers=config.num_layers,
                           d_model=config.d_model, num_heads=config.num_heads, positions=config.positions,
                           prev_tokens=config.prev_tokens)
    model = gpt(gpt_config)

    def loss_fn(params, state, batch, key):
        x, y, w = batch
        logits, state = model.apply(params, state, x, key=key, train=True)
        return softmax_cross_entropy(logits, y, where=w), (state, {})

    stages = [(copy_stage(vocab, st, seed + 3000 + 100 * i), st[-1]) for i, st in enumerate(config.copy_curriculum)]
    total = sum(n for _, n in stages) + config.gpt_steps
    optimizer = make_optimizer(TextConfig(learning_rate=config.learning_rate, warmup_steps=min(100, total // 10)), total)
    ts = init_train_state(model, optimizer, np.zeros((1, config.context), np.int32), seed)

    def train():
        pools = question_pools(config, corpus, seed)
        stages.append((lambda rng: reader_rows(config, vocab, corpus, pools, rng), config.gpt_steps))
        state, rng, step, start, curve = ts, np.random.default_rng(seed), make_step(loss_fn, optimizer), time.perf_counter(), []
        copy = []  # the copy answers' nats after each stage
        for k, (rows, n) in enumerate(stages):
            for t in range(1, n + 1):
                state, metrics = step(state, rows(rng))
                curve.append(float(metrics["loss"]))
                if t % 50 == 0:
                    print(f"reader stage {k} step {t}: loss {np.mean(curve[-50:]):.3f} "
                          f"({time.perf_counter() - start:.0f} s)", flush=True)
            copy.append(copy_nats(state.params, gpt_config, vocab, config.window or config.passage_chars,
                                  config.reader_prefix if config.window else config.prefix_chars, config.row, seed))
        return state, {"final_loss": float(np.mean(curve[-50:])), "seconds": time.perf_counter() - start,
                       "train_questions": len(pools["corpus"]), "copy_answer_nats": copy, "curve": curve[::10]}

    meta = json.loads(json.dumps({**dataclasses.asdict(config), "seed": seed}))  # as the checkpoint stores it
    params, info = cached(workdir, "reader", meta, ts.params, train)
    return params, gpt_config, info
