"""``pydoc_text``: a character-level text set that ships with every Python, so it needs no download.

The standard library's ``pydoc_data.topics`` holds the text ``help('topic')`` prints: the
language reference's sections (statements, operators, data model, ...) as English prose with
code examples. The corpus is its ``topics`` dict's values concatenated in sorted-key order.

It depends on the Python version, down to the patch release: on CPython 3.11.7 it has
464,970 characters, 103 distinct (vocabulary size 104 with the unknown), sha256 starting
``37d06970fc926e60`` (3.11.2 has 466,019 characters). ``pydoc_info()`` gives these figures
for the running Python; record them next to results that use the set.

Splits are by position, never shuffled: the published 'train' part is the first
n − ⌊n/10⌋ characters, 'test' the last ⌊n/10⌋; 'validation' is the last
round(validation_fraction · |published train|) characters of the published train part and
'train' what comes before it. The three never overlap, and each is one contiguous stream.
"""

from __future__ import annotations

import hashlib
import sys

import numpy as np

from jdl.data.text import Vocab, char_vocab, encode, windows

SEQ_LEN = 64  # default window length T of load('pydoc_text', ...)


def pydoc_corpus() -> str:
    """The whole text: ``pydoc_data.topics.topics``' values in sorted-key order, joined."""
    from pydoc_data import topics

    return "".join(topics.topics[k] for k in sorted(topics.topics))


def pydoc_vocab() -> Vocab:
    """The set's fixed character vocabulary: ``char_vocab`` of the whole corpus (all splits, so
    every split's ids agree), 104 ids on CPython 3.11.7 (103 characters and the unknown)."""
    return char_vocab(pydoc_corpus())


def pydoc_info() -> dict:
    """What the corpus is on this Python: {'python': version, 'chars': n, 'vocab_size': V,
    'sha256': the first 16 hex digits of the sha256 of its UTF-8 bytes}."""
    text = pydoc_corpus()
    return {"python": sys.version.split()[0], "chars": len(text), "vocab_size": char_vocab(text).size,
            "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]}


def split_bounds(n: int, split: str, validation_fraction: float) -> tuple[int, int]:
    """[start, stop) of ``split`` in a corpus of ``n`` characters (see the module docstring)."""
    if split not in ("train", "validation", "test"):
        raise ValueError(f"pydoc_text: split must be 'train', 'validation' or 'test', got {split!r}")
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"pydoc_text: validation_fraction must lie in [0, 1), got {validation_fraction}")
    cut = n - n // 10  # published train | test
    held = round(validation_fraction * cut)
    if split == "validation" and held == 0:
        raise ValueError(f"pydoc_text: validation_fraction={validation_fraction} holds out no validation "
                         "characters; use validation_fraction > 0 (default 0.1)")
    return {"train": (0, cut - held), "validation": (cut - held, cut), "test": (cut, n)}[split]


def pydoc_ids(split: str, validation_fraction: float = 0.1) -> np.ndarray:
    """One split as a contiguous stream of character ids (``pydoc_vocab()``'s), for a language
    model that cuts its own windows or carries its state across them.

    Shapes: → ids (L,) int32; L is 376,626 / 41,847 / 46,497 for train / validation / test on
    CPython 3.11.7 with validation_fraction=0.1 (418,473 for train with 0).
    """
    text = pydoc_corpus()
    start, stop = split_bounds(len(text), split, validation_fraction)
    return encode(char_vocab(text), text)[start:stop]


def pydoc_text(split: str, validation_fraction: float = 0.1, seq_len: int = SEQ_LEN,
               stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Next-character windows of one split: ``windows(pydoc_ids(split), seq_len, stride)``.

    x_i = ids[i·s : i·s + T] and y_i = ids[i·s + 1 : i·s + T + 1] (the character after each of
    x_i's), s = stride (default T, windows that do not overlap), cut inside the split, so no
    window reads across a split boundary. The text, and so every number here, depends on the
    Python version (see the module docstring and ``pydoc_info()``).

    Shapes: → x (N, T) int32, y (N, T) int32; with T = 64 on CPython 3.11.7, N is 5,884 /
    653 / 726 for train / validation / test.
    """
    return windows(pydoc_ids(split, validation_fraction), seq_len, stride)
