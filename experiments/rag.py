"""Retrieval-augmented generation on pydoc_text, small and measured: retrieve the passage a
cloze question came from, then let a character GPT fill the blank with and without it.

The corpus is cut into passages of ≤ ``passage_chars`` characters (``jdl.text.split_passages``),
all of them in the index. A question is a window of a passage with one word masked
(``masked_word_questions``); the test questions come from the passages of the test split, which
neither the GPT nor the contrastive encoder ever trains on. Retrieval: the embeddings of the
query and of every passage, exact cosine top-10 (``jdl.text.cosine_top_k``), recall@1/5/10 for

  - TF-IDF of hashed character 3- and 4-grams (no training),
  - a contrastive encoder: a two-layer MLP on the same n-gram counts (log 1 + c), trained with
    InfoNCE on (question, passage) pairs of the training split (Huang et al.'s DSSM in spirit),
  - mean-pooled features of the reader GPT below (trained as a reader only).

Generation: the reader, a rotary char GPT with embeddings of the 2 previous characters in its
input (``GPTConfig(prev_tokens=2)``) trained here (``experiments/rag_reader.py``) on the
retrieval-augmented format "window ⏎⏎ prefix → the masked word" of questions from the training
passages (the window: the passage's 40 characters most like the question, ``best_window``; the
prefix: its last 12 characters), after a copy curriculum on random-letter rows, continues each
test question's prefix greedily; the answer is right when the leading letters of the
continuation are the masked word. Test questions whose prefix + word occurs in a training
passage are dropped (``jdl.text.unseen_questions``). Prompts: the prefix alone (no retrieval),
the window of the top-1 retrieved passage + prefix, of a random passage, of the question's own.

    python -m experiments.rag --workdir=runs/rag4_seed0 [--quick] [--seed=1] [--copy_steps=600]
"""

from __future__ import annotations

import dataclasses
import functools
import re
import time

import numpy as np

SEP = "\n\n"


@dataclasses.dataclass(frozen=True)
class Config:
    """Passages and questions; the n-gram features; the contrastive encoder; the GPT."""

    passage_chars: int = 192
    prefix_chars: int = 48
    suffix_chars: int = 24
    buckets: int = 4096
    encoder_hidden: int = 256
    encoder_dim: int = 128
    encoder_steps: int = 600
    encoder_batch: int = 128
    encoder_rounds: int = 4  # questions drawn per training passage
    temperature: float = 0.05
    num_layers: int = 2
    d_model: int = 64
    num_heads: int = 4
    context: int = 256
    gpt_batch: int = 32
    gpt_steps: int = 800
    learning_rate: float = 3e-3
    reader_rounds: int = 8  # questions drawn per training passage for the reader
    reader_mix: tuple[float, float] = (0.8, 0.1)  # own passage, random passage (else no context)
    prefix_weight: float = 1.0  # the loss weight of the prefix's characters (the answer's is 1)
    copy_mix: float = 0.5  # the share of reader rows on random-letter passages (copying only)
    positions: str = "rotary"  # the reader's GPTConfig.positions ("learned": GPT-2's table)
    prev_tokens: int = 2  # the reader's GPTConfig.prev_tokens (embeddings of the 2 previous characters)
    window: int = 40  # the reader reads the best window of this many characters (0: the whole passage)
    reader_prefix: int = 12  # ... and this many characters of the prefix (with a window)
    row: int = 72  # the length of the reader's training rows
    # copy-only stages before the reader rows: (passage chars, prefix chars, row length, batch, steps)
    copy_curriculum: tuple = ((40, 12, 72, 32, 1000),)
    answer_chars: int = 16
    max_questions: int | None = None


QUICK = Config(passage_chars=96, prefix_chars=24, suffix_chars=12, buckets=512, encoder_hidden=32,
               encoder_dim=16, encoder_steps=20, encoder_batch=32, encoder_rounds=1, num_layers=1,
               d_model=16, num_heads=2, context=128, gpt_batch=8, gpt_steps=20, answer_chars=8,
               max_questions=32, reader_rounds=1, window=32, reader_prefix=8, row=56, copy_curriculum=((32, 8, 56, 8, 5),))


def corpus_passages(config: Config) -> dict:
    """{'passages': texts, 'train': ids of passages inside the training split, 'test': ids of
    passages inside the test split} (pydoc_text's position splits, validation_fraction 0.1)."""
    from jdl.data.pydoc_topics import pydoc_corpus, split_bounds
    from jdl.text import split_passages

    text = pydoc_corpus()
    bounds = split_passages(text, config.passage_chars)
    train_stop = split_bounds(len(text), "train", 0.1)[1]
    test_start = split_bounds(len(text), "test", 0.1)[0]
    return {"passages": [text[a:b] for a, b in bounds],
            "train": [i for i, (a, b) in enumerate(bounds) if b <= train_stop],
            "test": [i for i, (a, b) in enumerate(bounds) if a >= test_start]}


def train_encoder(config: Config, corpus: dict, seed: int):
    """The contrastive encoder MLP(log(1 + n-gram counts)) trained with InfoNCE on in-batch
    negatives; returns ``embed(texts) -> (D, encoder_dim)``."""
    import jax
    import jax.numpy as jnp

    from jdl import nn, optim
    from jdl.text import masked_word_questions
    from jdl.text.embeddings import char_ngram_counts, info_nce
    from jdl.train import init_train_state, make_step

    feats = lambda texts: np.log1p(char_ngram_counts(texts, buckets=config.buckets))
    qs = [q for r in range(config.encoder_rounds)
          for q in masked_word_questions(corpus["passages"], corpus["train"], seed + 100 + r,
                                         config.prefix_chars, config.suffix_chars)]
    fq, fp = feats([q.query for q in qs]), feats([corpus["passages"][q.passage] for q in qs])
    model = nn.serial(nn.Dense(config.encoder_hidden), nn.as_module(jnp.tanh), nn.Dense(config.encoder_dim))

    def loss_fn(params, state, batch, key):
        q, p = (model.apply(params, state, x)[0] for x in batch)
        return info_nce(q, p, config.temperature), (state, {})

    optimizer = optim.adam(1e-3)
    ts = init_train_state(model, optimizer, fq[:1], seed)
    step = make_step(loss_fn, optimizer)
    rng = np.random.default_rng(seed)
    for _ in range(config.encoder_steps):
        i = rng.choice(len(qs), config.encoder_batch, replace=False)
        ts, metrics = step(ts, (fq[i], fp[i]))
    apply = jax.jit(lambda p, x: model.apply(p, {}, x)[0])
    return lambda texts: np.asarray(apply(ts.params, feats(texts))), float(metrics["loss"])


def retrieve(config: Config, corpus: dict, questions: list, embedders: dict) -> dict:
    """For each embedder: the top-10 passages of every question, recall@1/5/10."""
    from jdl.text import cosine_top_k, recall_at_k

    targets = np.array([q.passage for q in questions])
    out = {}
    for name, (embed_passages, embed_queries) in embedders.items():
        start = time.perf_counter()
        _, ids = cosine_top_k(embed_queries([q.query for q in questions]), embed_passages(corpus["passages"]), 10)
        out[name] = {"ids": np.asarray(ids), "recall": recall_at_k(ids, targets, (1, 5, 10)),
                     "seconds": time.perf_counter() - start}
    return out


@functools.lru_cache
def answer_loss(gpt_config):
    """Jitted Σ_t w_t·CE(logits_t, y_t) of the GPT on (params, x, y, w)."""
    import jax

    from jdl.losses import softmax_cross_entropy
    from jdl.models.gpt import gpt

    model = gpt(gpt_config)
    return jax.jit(lambda params, x, y, w: softmax_cross_entropy(model.apply(params, {}, x)[0], y, reduction="sum", where=w))


def said_words(vocab, params, gpt_config, prompts: list, n: int, first=None) -> list[str]:
    """The leading letters of each prompt's n-character greedy continuation (``greedy_continue``,
    ``first`` its optional mask on the first character); prompts right-padded to the longest."""
    from jdl.data.text import decode
    from jdl.text.rag import greedy_continue, pad_right

    ids, lengths = pad_right(vocab, prompts, min(gpt_config.context, max(map(len, prompts)) + n) - n)
    new = np.asarray(greedy_continue(params, gpt_config, np.pad(ids, ((0, 0), (0, n))), lengths, n, first))
    return [re.match(r"[A-Za-z]*", decode(vocab, row)).group(0) for row in new]


def letters(vocab) -> np.ndarray:
    """(V,) bool: the ids of the ASCII letters, the characters a word can start with (the unknown: no)."""
    return np.array([len(t) == 1 and t.isascii() and t.isalpha() for t in vocab.tokens] + [False])


def answers(config: Config, vocab, params, gpt_config, questions: list, contexts: list) -> dict:
    """Greedy continuations of what the reader reads (``reader_view``: a window of the passage,
    or None for no passage, and the prefix); exact match of their leading letters with the
    masked word, free ('accuracy') and with the first character constrained to a letter
    ('accuracy_letter_first': the answer is a word, the same rule for every prompt); the
    reader's cross-entropy on the word's characters (and the one after it) given context +
    prefix, in nats per character, which moves before exact match does; and the share of
    contexts holding the prefix's last 3 characters followed by the word (copyable), and the first 5 examples."""
    from experiments.rag_reader import reader_view
    from jdl.text.rag import reader_batch

    contexts, questions = zip(*[reader_view(config, c, q) for c, q in zip(contexts, questions)])
    prompts = [c + q.prefix for c, q in zip(contexts, questions)]
    said = said_words(vocab, params, gpt_config, prompts, config.answer_chars)
    forced = said_words(vocab, params, gpt_config, prompts, config.answer_chars, letters(vocab))
    row = min(gpt_config.context, max(len(p) + len(q.answer) + 1 for p, q in zip(prompts, questions)))
    x, y, w = (np.pad(a, ((0, -len(a) % 64), (0, 0))) for a in
               reader_batch(vocab, contexts, questions, row, prefix_weight=0.0))  # 64-row chunks
    loss = answer_loss(gpt_config)
    nats = sum(float(loss(params, x[i:i + 64], y[i:i + 64], w[i:i + 64])) for i in range(0, len(x), 64)) / w.sum()
    copyable = [q.prefix[-3:] + q.answer in c for c, q in zip(contexts, questions)]  # the answer is there to copy
    exact = lambda words: float(np.mean([s == q.answer for s, q in zip(words, questions)]))
    shown = [{"prefix": q.prefix, "answer": q.answer, "said": s, "said_letter_first": f}
             for q, s, f in list(zip(questions, said, forced))[:5]]
    return {"accuracy": exact(said), "accuracy_letter_first": exact(forced), "answer_nats": float(nats),
            "copyable": float(np.mean(copyable)), "examples": shown}


def embedders(config: Config, corpus: dict, vocab, params, gpt_config, seed: int) -> tuple[dict, dict]:
    """{name: (embed passages, embed queries)} for TF-IDF, the contrastive encoder and the
    mean-pooled GPT, and what training the encoder reported."""
    import jax
    import jax.numpy as jnp

    from jdl.text.embeddings import char_ngram_counts, fit_idf, gpt_features, tfidf
    from jdl.text.rag import pad_right

    idf = fit_idf(char_ngram_counts(corpus["passages"], buckets=config.buckets))
    by_tfidf = lambda texts: tfidf(char_ngram_counts(texts, buckets=config.buckets), idf)
    start = time.perf_counter()
    by_encoder, encoder_loss = train_encoder(config, corpus, seed)
    encoder = {"final_loss": encoder_loss, "seconds": time.perf_counter() - start}
    features = jax.jit(lambda p, ids, n: gpt_features(p, gpt_config, ids, n))

    def by_gpt(texts):
        ids, lengths = pad_right(vocab, texts, gpt_config.context)
        return np.concatenate([np.asarray(features(params, jnp.asarray(ids[i:i + 256]), jnp.asarray(lengths[i:i + 256])))
                               for i in range(0, len(texts), 256)])

    names = ("TF-IDF, char 3+4-grams", "contrastive n-gram encoder (InfoNCE)", "GPT features, mean-pooled")
    return {n: (f, f) for n, f in zip(names, (by_tfidf, by_encoder, by_gpt))}, encoder


def plot(results: dict, workdir: str) -> str:
    """Recall@k of each retriever (left) and answer accuracy of each prompt (right)."""
    from matplotlib.figure import Figure

    from experiments.common import save_figure

    fig = Figure(figsize=(10, 3.8))
    ax, ax2 = fig.subplots(1, 2)
    for i, (name, r) in enumerate(results["retrieval"].items()):
        ax.bar(np.arange(3) + 0.27 * (i - 1), [r["recall"][k] for k in ("1", "5", "10")], 0.27, label=name)
    ax.set_xticks(range(3), ["recall@1", "recall@5", "recall@10"])
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7)
    ax.set_title(f"retrieval: {results['data']['questions']} test questions, {results['data']['passages']} passages")
    rows = results["generation"]
    y = np.arange(len(rows))
    ax2.barh(y - 0.2, [r["accuracy"] for r in rows.values()], 0.4, color="C2", label="greedy")
    ax2.barh(y + 0.2, [r["accuracy_letter_first"] for r in rows.values()], 0.4, color="C4", label="letter first")
    ax2.set_yticks(y, list(rows), fontsize=7)
    ax2.set_xlim(0, 1)
    ax2.legend(fontsize=7)
    ax2.set_xlabel("masked word, exact match")
    ax2.set_title("generation: char GPT continuing the prefix")
    return save_figure(fig, workdir, "rag.png", dpi=90)


def run(workdir: str, quick: bool = False, seed: int = 0, gpt_steps: int | None = None,
        copy_steps: int | None = None) -> dict:
    """Build passages and questions, train the GPT and the encoder, measure recall@k and
    answer accuracy; write results.json and rag.png. Returns {'config', 'data', 'gpt',
    'encoder', 'retrieval', 'generation', 'plots'}."""
    from experiments.common import write_results
    from jdl.data import pydoc_info, pydoc_vocab
    from experiments.rag_reader import train_reader
    from jdl.text import masked_word_questions, unseen_questions

    config = QUICK if quick else Config()
    if gpt_steps is not None:
        config = dataclasses.replace(config, gpt_steps=gpt_steps)
    if copy_steps is not None:  # the last copy-curriculum stage's steps
        *first, last = config.copy_curriculum
        config = dataclasses.replace(config, copy_curriculum=(*first, (*last[:-1], copy_steps)))
    vocab, corpus = pydoc_vocab(), corpus_passages(config)
    asked = masked_word_questions(corpus["passages"], corpus["test"], seed, config.prefix_chars, config.suffix_chars)
    questions = unseen_questions(asked, corpus["passages"], corpus["train"])[:config.max_questions]
    params, gpt_config, gpt = train_reader(config, vocab, corpus, seed, workdir)
    found_by, encoder = embedders(config, corpus, vocab, params, gpt_config, seed)
    found = retrieve(config, corpus, questions, found_by)
    best = max(found, key=lambda n: found[n]["recall"][1])
    passages, rng = corpus["passages"], np.random.default_rng(seed + 1)
    contexts = {"no retrieval (prefix only)": [None for _ in questions],
                "random passage + prefix": [passages[i] for i in rng.choice(len(passages), len(questions))],
                **{f"top-1 by {name} + prefix": [passages[i] for i in found[name]["ids"][:, 0]] for name in found},
                "the question's own passage + prefix (oracle)": [passages[q.passage] for q in questions]}
    generation = {name: answers(config, vocab, params, gpt_config, questions, c) for name, c in contexts.items()}
    results = {"config": dataclasses.asdict(config),
               "data": {**pydoc_info(), "passages": len(passages), "train_passages": len(corpus["train"]),
                        "test_passages": len(corpus["test"]), "questions_asked": len(asked),
                        "questions": len(questions)},
               "gpt": gpt, "encoder": encoder, "best_retriever": best,
               "retrieval": {n: {"recall": {str(k): v for k, v in r["recall"].items()}, "seconds": r["seconds"]}
                             for n, r in found.items()},
               "generation": generation}
    results["plots"] = [plot(results, workdir)]
    write_results(workdir, results)
    return results


if __name__ == "__main__":
    from absl import flags

    from experiments import common

    flags.DEFINE_integer("gpt_steps", None, "GPT training steps (default: Config's).")
    flags.DEFINE_integer("copy_steps", None, "Steps of the last copy-curriculum stage (default: Config's).")
    common.main(run, "rag")
