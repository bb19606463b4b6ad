"""How long byte-level BPE training takes on the pydoc_text 'train' split, and how well the
merges compress the unseen 'validation' split (bytes per token), for 256 / 512 / 1024 merges.

Times are CPU seconds (``time.process_time``, best of ``repeats``), since wall time is unreliable
on a shared machine. Two references: recounting every pair after each merge (what the
incremental update avoids; timed for a few merges and given per merge), and the Rust trainer of
the ``tokenizers`` library (byte-level, the same pre-split regex in spirit, its own tie-breaking)
when it is installed.

    python -m benchmarks.bpe_train --workdir=runs/bench-bpe [--quick]
"""

from __future__ import annotations

import collections
import time

from experiments.common import write_results
from jdl.data import bpe
from jdl.data.bpe_merge import merge_pair


def cpu_seconds(fn, repeats: int) -> tuple[float, object]:
    """Best CPU time of ``repeats`` calls of ``fn()``, and its result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.process_time()
        out = fn()
        best = min(best, time.process_time() - start)
    return best, out


def recount_merges(text: str, num_merges: int) -> list[tuple[int, int]]:
    """``train_bpe``'s merges found the slow way: every pair of every distinct chunk is
    recounted after each merge."""
    chunks = collections.Counter(bpe.split_chunks(bpe.SPLIT_PATTERN, text.encode()))
    words, freqs = [list(c) for c in chunks], list(chunks.values())
    merges = []
    for i in range(num_merges):
        counts: dict = {}
        for w, f in zip(words, freqs):
            for p in zip(w, w[1:]):
                counts[p] = counts.get(p, 0) + f
        pair = max(counts, key=lambda p: (counts[p], -p[0], -p[1]))
        merges.append(pair)
        words = [merge_pair(w, pair, 256 + i) for w in words]
    return merges


def tokenizers_seconds(text: str, num_merges: int, repeats: int) -> float | None:
    """CPU seconds of the ``tokenizers`` library's byte-level BPE trainer for V = 256 + merges."""
    try:
        import tokenizers
    except ImportError:
        return None

    def train():
        tok = tokenizers.Tokenizer(tokenizers.models.BPE())
        tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
        trainer = tokenizers.trainers.BpeTrainer(
            vocab_size=256 + num_merges, show_progress=False,
            initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator([text], trainer)
        return tok

    return cpu_seconds(train, repeats)[0]


def run(workdir: str, quick: bool = False, seed: int = 0) -> dict:
    """Train on pydoc 'train', measure on 'validation'; results.json under ``workdir``."""
    del seed  # training is deterministic
    train, valid = bpe.pydoc_split_text("train"), bpe.pydoc_split_text("validation")
    repeats = 1 if quick else 5
    results: dict = {"train_bytes": len(train.encode()), "validation_bytes": len(valid.encode()),
                     "merges": {}}
    for n in (256,) if quick else (256, 512, 1024):
        seconds, tok = cpu_seconds(lambda: bpe.train_bpe(train, n), repeats)
        encode_s, _ = cpu_seconds(lambda: bpe.encode(tok, valid), repeats)
        results["merges"][n] = {
            "train_cpu_s": seconds, "encode_validation_cpu_s": encode_s,
            "bytes_per_token_validation": bpe.bytes_per_token(tok, valid),
            "bytes_per_token_train": bpe.bytes_per_token(tok, train),
            "tokenizers_train_cpu_s": tokenizers_seconds(train, n, repeats)}
        print(n, results["merges"][n], flush=True)
    k = 4 if quick else 16
    seconds, merges = cpu_seconds(lambda: recount_merges(train, k), 1)
    results["recount_cpu_s_per_merge"] = seconds / k
    results["recount_merges_agree"] = merges == list(bpe.train_bpe(train, k).merges)
    write_results(workdir, results)
    return results


if __name__ == "__main__":
    from experiments import common

    common.main(run, "bpe_train")
