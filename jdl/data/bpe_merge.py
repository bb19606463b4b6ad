"""Byte-pair merges: replacing a pair of adjacent tokens by a new one, and learning the merges
from pair counts kept up to date incrementally (the training half of ``jdl.data.bpe``).

Training sees the text as a multiset of chunks (the pre-split words, each a sequence of token
ids, with how often it occurs). One merge step: the most frequent adjacent pair (a, b), counted
over all chunk occurrences, overlapping pairs included ("aaa" holds (a, a) twice), ties to the
smallest (a, b); every occurrence of it, left to right, becomes the new token. Instead of
recounting all pairs after each step, only the chunks that held (a, b) are touched: their old
pairs are subtracted and their new ones added, so a step costs the length of the chunks it
changes, not of the text. A heap of (−count, a, b), with stale entries skipped when they reach
its top, finds the next pair.
"""

from __future__ import annotations

import heapq
from typing import Iterable

Pair = tuple[int, int]


def merge_pair(ids: list[int], pair: Pair, new_id: int) -> list[int]:
    """Replace each occurrence of ``pair`` in ``ids``, scanning left to right without overlap,
    by ``new_id``: merge_pair([a, a, a], (a, a), t) = [t, a].

    Shapes: ids (L,) → (L − k,), k the number of occurrences replaced.
    """
    a, b = pair
    out: list[int] = []
    i, n = 0, len(ids)
    while i < n:
        if i + 1 < n and ids[i] == a and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def pair_counts(words: list[list[int]], freqs: list[int]) -> tuple[dict[Pair, int], dict[Pair, set[int]]]:
    """n(a, b) = Σ_w f_w · #{i : w_i = a, w_{i+1} = b}, and for each pair the chunks holding it."""
    counts: dict[Pair, int] = {}
    where: dict[Pair, set[int]] = {}
    for w, (word, f) in enumerate(zip(words, freqs)):
        for p in zip(word, word[1:]):
            counts[p] = counts.get(p, 0) + f
            where.setdefault(p, set()).add(w)
    return counts, where


def apply_merge(pair: Pair, new_id: int, words: list[list[int]], freqs: list[int],
                counts: dict[Pair, int], where: dict[Pair, set[int]]) -> set[Pair]:
    """Merge ``pair`` into ``new_id`` in every chunk that holds it, updating ``counts`` and
    ``where`` in place (the training loop's own working copies); returns the pairs whose count
    changed. Chunk indices in ``where`` may be stale (the pair has left the chunk): skipped."""
    changed: set[Pair] = set()
    for w in where.pop(pair, ()):
        old = words[w]
        new = merge_pair(old, pair, new_id)
        if len(new) == len(old):
            continue
        f = freqs[w]
        for p in zip(old, old[1:]):
            counts[p] -= f
            changed.add(p)
        for p in zip(new, new[1:]):
            counts[p] = counts.get(p, 0) + f
            changed.add(p)
            where.setdefault(p, set()).add(w)
        words[w] = new
    for p in changed:
        if counts.get(p) == 0:
            del counts[p]
    return changed


def learn_merges(chunks: Iterable[tuple[bytes, int]], num_merges: int) -> list[Pair]:
    """Up to ``num_merges`` merges learned from (chunk, count) pairs: merge i makes token 256 + i.

    Each step takes argmax over pairs of (n(a, b), −a, −b) — the most frequent pair, ties to
    the smallest ids — and merges it everywhere. Stops early when no chunk has two tokens left.

    Returns:
      merges: [(a, b), ...] in the order learned (the rank order encoding applies them in).
    """
    words, freqs = [], []
    for chunk, f in chunks:
        words.append(list(chunk))
        freqs.append(f)
    counts, where = pair_counts(words, freqs)
    heap = [(-c, a, b) for (a, b), c in counts.items()]
    heapq.heapify(heap)
    merges: list[Pair] = []
    while len(merges) < num_merges:
        while heap and counts.get((heap[0][1], heap[0][2])) != -heap[0][0]:
            heapq.heappop(heap)  # stale: the pair's count changed since this entry was pushed
        if not heap:
            break
        _, a, b = heapq.heappop(heap)
        merges.append((a, b))
        for p in apply_merge((a, b), 255 + len(merges), words, freqs, counts, where):
            if p in counts:
                heapq.heappush(heap, (-counts[p], *p))
    return merges
