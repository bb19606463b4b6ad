"""A corpus cut into passages, and cloze questions built from them: a window of a passage with
one word masked out, whose answers are the passage it came from (retrieval) and the word
(generation)."""

from __future__ import annotations

import dataclasses
import re

import numpy as np

MASK = "____"


def split_passages(text: str, max_chars: int = 256) -> list[tuple[int, int]]:
    """Cut ``text`` into consecutive passages of at most ``max_chars`` characters: each ends at
    the last newline in its second half, else the last space there, else at ``max_chars``.
    The passages cover the text exactly once, in order.

    Returns [(start, stop), …], text[start:stop] being a passage.

    >>> split_passages("aaa bbb\\nccc ddd", 9)
    [(0, 8), (8, 15)]
    """
    if not isinstance(max_chars, int) or max_chars < 2:
        raise ValueError(f"split_passages: max_chars must be an int >= 2, got {max_chars!r}")
    bounds, pos, n = [], 0, len(text)
    while pos < n:
        stop = min(pos + max_chars, n)
        if stop < n:
            lo = pos + max_chars // 2
            cut = max(text.rfind("\n", lo, stop), -1)
            cut = cut if cut != -1 else text.rfind(" ", lo, stop)
            stop = cut + 1 if cut != -1 else stop
        bounds.append((pos, stop))
        pos = stop
    return bounds


@dataclasses.dataclass(frozen=True)
class Question:
    """A cloze question: ``prefix`` MASK ``suffix`` is a window of passage ``passage`` with the
    word ``answer`` masked out. ``query`` is what a retriever reads; a left-to-right language
    model reads ``prefix`` and should continue it with ``answer``."""

    passage: int
    prefix: str
    answer: str
    suffix: str

    @property
    def query(self) -> str:
        return self.prefix + MASK + self.suffix


def masked_word_questions(passages: list[str], which: list[int] | np.ndarray, seed: int,
                          prefix_chars: int = 64, suffix_chars: int = 32,
                          min_word: int = 5, max_word: int = 12) -> list[Question]:
    """One question per passage in ``which`` that has a word (a run of ``min_word`` to
    ``max_word`` ASCII letters) with at least ``prefix_chars`` characters before it: a word drawn uniformly
    among those (numpy ``default_rng(seed)``), its ``prefix_chars`` characters before and up
    to ``suffix_chars`` after. Passages without such a word give no question.
    """
    rng = np.random.default_rng(seed)
    pattern = re.compile(rf"(?<![A-Za-z])[A-Za-z]{{{min_word},{max_word}}}(?![A-Za-z])")
    out = []
    for i in which:
        text = passages[int(i)]
        spans = [m.span() for m in pattern.finditer(text) if m.start() >= prefix_chars]
        if not spans:
            continue
        a, b = spans[int(rng.integers(len(spans)))]
        out.append(Question(int(i), text[a - prefix_chars:a], text[a:b], text[b:b + suffix_chars]))
    return out


def unseen_questions(questions: list[Question], passages: list[str], seen: list[int] | np.ndarray) -> list[Question]:
    """The questions whose ``prefix + answer`` occurs in none of the ``seen`` passages (those a
    model trained on): a held-out question's answer cannot be recalled from training text, even
    where the corpus repeats a sentence in several passages.
    """
    seen_text = "\x00".join(passages[int(i)] for i in seen)  # NUL never occurs inside a window
    return [q for q in questions if q.prefix + q.answer not in seen_text]
