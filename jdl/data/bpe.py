"""A byte-level byte-pair-encoding (BPE) tokenizer, trained from scratch: the subword
vocabulary beside ``jdl.data.text``'s characters and words (the course's input processing).

Any text is first its UTF-8 bytes, so the 256 byte values are the first 256 tokens and nothing
is ever unknown. Training then repeats: find the most frequent pair of adjacent tokens and make
it a new token (merge i makes token 256 + i, whose bytes are its two parts' bytes joined), so
V = 256 + number of merges. Encoding applies the learned merges by rank, the earliest learned
first, as GPT-2 does; decoding joins the tokens' bytes, so decode(encode(x)) = x for any bytes.

Pre-splitting (our choice, as GPT-2): the text is first cut into word-like chunks with
``SPLIT_PATTERN`` — contractions ('s 't 're 've 'm 'll 'd), letters with at most one space
before them, digits likewise, other symbols likewise, and white space — and merges never cross
a chunk boundary. Tokens then stay word pieces (' the', 'ing') instead of spanning words, a
chunk that repeats is counted once with its multiplicity, which makes training fast, and
encoding a chunk costs its own length. The pattern is GPT-2's written for Python's ``re``
(letters ``[^\\W\\d_]`` for \\p{L}, digits ``\\d`` for \\p{N}), which agrees with GPT-2's on
ASCII text; bytes that are not UTF-8 fall in the symbols' class and still round-trip.
``pattern=None`` trains on the text as one sequence (the original compression algorithm), with
training and encoding costs that grow with the whole text: only for short texts.
"""

from __future__ import annotations

import collections
import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jdl.data.bpe_merge import learn_merges, merge_pair
from jdl.data.pydoc_topics import pydoc_corpus, split_bounds
from jdl.data.text import check_ids

SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d+| ?(?:_|[^\s\w])+|\s+(?!\S)|\s+"""
FORMAT = "jdl.bpe"  # the "format" field of a saved tokenizer


@dataclass(frozen=True)
class BPE:
    """A trained byte-level BPE tokenizer: ``merges[i] = (a, b)`` makes token 256 + i.

    ``vocab[t]`` is the bytes of token t: bytes([t]) for t < 256, vocab[a] + vocab[b] for
    merge (a, b); V = ``size`` = 256 + len(merges). ``pattern`` is the pre-split regex (None:
    no pre-split). ``vocab`` and ``ranks`` (pair → rank) are derived from ``merges``.
    """

    merges: tuple[tuple[int, int], ...]
    pattern: str | None = SPLIT_PATTERN
    vocab: tuple[bytes, ...] = field(init=False, repr=False, compare=False)
    ranks: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        merges = tuple(tuple(m) for m in self.merges) if isinstance(self.merges, (list, tuple)) else None
        if merges is None or not all(len(m) == 2 and all(isinstance(t, int) for t in m) for m in merges):
            raise TypeError("BPE: merges must be a sequence of (a, b) pairs of ints, e.g. BPE(((97, 97),))")
        vocab = [bytes([t]) for t in range(256)]
        for i, (a, b) in enumerate(merges):
            if not (0 <= a < 256 + i and 0 <= b < 256 + i):
                raise ValueError(f"BPE: merges[{i}] = ({a}, {b}) names a token outside 0..{255 + i} "
                                 f"(merge {i} may only join bytes and earlier merges' tokens)")
            vocab.append(vocab[a] + vocab[b])
        if len(set(merges)) != len(merges):
            raise ValueError("BPE: merges repeat a pair; each pair is merged once")
        if self.pattern is not None:
            re.compile(self.pattern)
        object.__setattr__(self, "merges", merges)
        object.__setattr__(self, "vocab", tuple(vocab))
        object.__setattr__(self, "ranks", {m: i for i, m in enumerate(merges)})

    @property
    def size(self) -> int:
        """V = 256 + len(merges): the byte tokens and the merged ones."""
        return 256 + len(self.merges)


def as_bytes(name: str, data: Any) -> bytes:
    """``data`` as bytes: a str as its UTF-8 (lone surrogates kept, 'surrogatepass'), bytes as is."""
    if isinstance(data, str):
        return data.encode("utf-8", "surrogatepass")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"{name}: expected a str or bytes, got {type(data).__name__}")


def split_chunks(pattern: str | None, data: bytes) -> list[bytes]:
    """``data`` cut by ``pattern`` into chunks that join back to ``data`` (bytes that are not
    UTF-8 are matched as the lone surrogates of 'surrogateescape' and come back unchanged)."""
    if pattern is None:
        return [data] if data else []
    text = data.decode("utf-8", "surrogateescape")
    return [m.encode("utf-8", "surrogateescape") for m in re.findall(pattern, text)]


def train_bpe(data: str | bytes, num_merges: int, *, pattern: str | None = SPLIT_PATTERN) -> BPE:
    """Learn ``num_merges`` merges from ``data`` (a str, as UTF-8, or bytes).

    Each step merges the pair (a, b) = argmax n(a, b), n(a, b) = the number of places where
    token a is followed by token b inside a chunk (overlaps counted: "aaa" holds (a, a) twice),
    ties to the smallest (a, b); its occurrences, left to right, become token 256 + i.
    Pair counts are updated only in the chunks a merge changes (``jdl.data.bpe_merge``).
    Training stops early when no chunk has two tokens left, so ``len(tok.merges)`` may be less.

    Args:
      data: the training text.
      num_merges: how many merges to learn (an int >= 0); V = 256 + num_merges.
      pattern: the pre-split regex (``SPLIT_PATTERN``), or None to train on one sequence.

    Returns:
      a frozen ``BPE``.

    >>> tok = train_bpe("aaabdaaabac", 3, pattern=None)
    >>> [tok.vocab[t] for t in range(256, tok.size)]
    [b'aa', b'ab', b'aaab']
    """
    data = as_bytes("train_bpe", data)
    if not isinstance(num_merges, (int, np.integer)) or isinstance(num_merges, bool) or num_merges < 0:
        raise ValueError(f"train_bpe: num_merges must be an int >= 0, got {num_merges!r}")
    chunks = collections.Counter(split_chunks(pattern, data))
    return BPE(tuple(learn_merges(chunks.items(), int(num_merges))), pattern)


def encode_chunk(tok: BPE, chunk: bytes) -> list[int]:
    """One chunk's ids: while some adjacent pair is a merge, merge the lowest-ranked one."""
    ids = list(chunk)
    while len(ids) > 1:
        pair = min(zip(ids, ids[1:]), key=lambda p: tok.ranks.get(p, len(tok.ranks)))
        if pair not in tok.ranks:
            break
        ids = merge_pair(ids, pair, 256 + tok.ranks[pair])
    return ids


def encode_bytes(tok: BPE, data: bytes) -> np.ndarray:
    """The token ids of ``data``: each chunk of ``split_chunks`` encoded by rank (GPT-2's
    encoder): repeatedly, the adjacent pair with the lowest rank r becomes token 256 + r.

    Shapes: N bytes → ids (M,) int32, M ≤ N; M = N without merges.
    """
    data = as_bytes("encode_bytes", data)
    done: dict[bytes, list[int]] = {}  # this call's chunk → ids (chunks repeat)
    ids: list[int] = []
    for chunk in split_chunks(tok.pattern, data):
        if chunk not in done:
            done[chunk] = encode_chunk(tok, chunk)
        ids.extend(done[chunk])
    return np.array(ids, dtype=np.int32)


def encode(tok: BPE, text: str) -> np.ndarray:
    """``encode_bytes`` of the UTF-8 bytes of ``text`` (lone surrogates kept, 'surrogatepass').

    Shapes: a text of N UTF-8 bytes → ids (M,) int32.

    >>> tok = train_bpe("the cat, the hat", 3)  # merges: 'at', 'he', 't' + 'he'
    >>> [tok.vocab[t] for t in encode(tok, "the hat")]
    [b'the', b' ', b'h', b'at']
    """
    if not isinstance(text, str):
        raise TypeError(f"encode: expected a str, got {type(text).__name__}; use encode_bytes for bytes")
    return encode_bytes(tok, text.encode("utf-8", "surrogatepass"))


def decode_bytes(tok: BPE, ids: Any) -> bytes:
    """The bytes of ``ids``: vocab[id_1] + vocab[id_2] + …; decode_bytes(encode_bytes(x)) = x.

    Shapes: ids (M,) integers in 0..V−1 (numpy, jax or a list) → bytes.
    """
    ids = check_ids("decode_bytes", ids, tok.size, "the tokenizer's")
    return b"".join(tok.vocab[t] for t in ids.tolist())


def decode(tok: BPE, ids: Any, errors: str = "replace") -> str:
    """The text of ``ids``: ``decode_bytes`` read as UTF-8. Ids cut mid-character (a sampled
    sequence can be) give U+FFFD with ``errors='replace'`` (GPT-2's choice); 'strict' raises,
    'surrogatepass' gives back the lone surrogates ``encode`` kept.

    Shapes: ids (M,) → str.
    """
    return decode_bytes(tok, ids).decode("utf-8", errors)


def bytes_per_token(tok: BPE, data: str | bytes) -> float:
    """Compression: N/M, the bytes of ``data`` per token of its encoding (1.0 without merges;
    ``nan`` for empty data)."""
    data = as_bytes("bytes_per_token", data)
    return len(data) / len(encode_bytes(tok, data)) if data else float("nan")


def token_table(tok: BPE, start: int = 256, stop: int | None = None) -> str:
    """The tokens ``start``..``stop`` − 1 (default: the learned ones), one per line:
    id, the merge that made it, and its bytes (as Python writes them).

    >>> print(token_table(train_bpe("aaabdaaabac", 3, pattern=None)))
      id  merge        bytes
     256  97 + 97      b'aa'
     257  97 + 98      b'ab'
     258  256 + 257    b'aaab'
    """
    stop = tok.size if stop is None else stop
    if not 0 <= start <= stop <= tok.size:
        raise ValueError(f"token_table: need 0 <= start <= stop <= V = {tok.size}, got start={start}, stop={stop}")
    rows = ["  id  merge        bytes"]
    for t in range(start, stop):
        merge = "byte" if t < 256 else "{} + {}".format(*tok.merges[t - 256])
        rows.append(f"{t:4d}  {merge:<11}  {tok.vocab[t]!r}")
    return "\n".join(rows)


def bpe_to_dict(tok: BPE) -> dict:
    """The tokenizer as JSON-ready data: {'format': 'jdl.bpe', 'version': 1, 'pattern', 'merges'}."""
    return {"format": FORMAT, "version": 1, "pattern": tok.pattern, "merges": [list(m) for m in tok.merges]}


def bpe_from_dict(d: dict) -> BPE:
    """The ``BPE`` that ``bpe_to_dict`` wrote (its merges are checked again)."""
    if not isinstance(d, dict) or d.get("format") != FORMAT or d.get("version") != 1:
        head = {k: d[k] for k in ("format", "version") if k in d} if isinstance(d, dict) else type(d).__name__
        raise ValueError(f"load_bpe: not a saved BPE tokenizer (expected format {FORMAT!r} version 1), got {head}")
    return BPE(tuple(tuple(m) for m in d["merges"]), d["pattern"])


def save_bpe(tok: BPE, path: str) -> None:
    """Write ``tok`` to ``path`` as JSON (``bpe_to_dict``)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(bpe_to_dict(tok), f)


def load_bpe(path: str) -> BPE:
    """Read a tokenizer ``save_bpe`` wrote: load_bpe(p) == tok after save_bpe(tok, p)."""
    with open(path, encoding="utf-8") as f:
        return bpe_from_dict(json.load(f))


def pydoc_split_text(split: str, validation_fraction: float = 0.1) -> str:
    """One split of the pydoc_text corpus as text: the characters ``pydoc_ids`` encodes."""
    text = pydoc_corpus()
    start, stop = split_bounds(len(text), split, validation_fraction)
    return text[start:stop]


def pydoc_bpe_ids(tok: BPE, split: str, validation_fraction: float = 0.1) -> np.ndarray:
    """One pydoc_text split (by character position, as ``pydoc_ids``) as a stream of BPE ids;
    ``jdl.data.text.windows(ids, seq_len)`` cuts it into next-token windows. Train ``tok`` on
    the 'train' split only, so validation and test text stay unseen.

    Shapes: → ids (M,) int32.
    """
    return encode(tok, pydoc_split_text(split, validation_fraction))
