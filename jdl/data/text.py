"""Text to tensors: a vocabulary, encoding and decoding, one-hot vectors, bags of words and
next-token windows.

The course's "input processing": text must be encoded before a network can read it, as
one-hot vectors (token v ↦ the unit vector e_v of length V), bags of words (a document ↦ the
sum of its tokens' one-hot vectors, the count of each token, order forgotten) or embeddings
(token v ↦ row v of a learned matrix, ``jdl.nn.Embedding``: the one-hot vector times that
matrix). Everything here is host-side numpy, except ``one_hot`` which also takes jax arrays.

A ``Vocab`` maps tokens (characters, or lower-cased words) to ids 0..V−1: the known tokens in
sorted order, then one more id, V−1, for every token outside them (the unknown symbol).
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

LEVELS = ("char", "word")


@dataclass(frozen=True)
class Vocab:
    """Token ↔ id: ``tokens[i]`` has id i; any other token has id ``len(tokens)`` (the unknown).

    ``level`` says what a token is: 'char' (one character; ``encode`` reads every character,
    newlines and spaces included) or 'word' (a run of letters, digits or '_' of the lower-cased
    text, ``words``). ``tokens`` are sorted (by code point) and unique; ``unknown`` is the
    string ``decode`` writes for the unknown id and is not itself one of the tokens.
    """

    tokens: tuple[str, ...]
    unknown: str = "\ufffd"
    level: str = "char"

    def __post_init__(self):
        if self.level not in LEVELS:
            raise ValueError(f"Vocab: level must be one of {LEVELS}, got {self.level!r}")
        if not isinstance(self.tokens, tuple) or not all(isinstance(t, str) and t for t in self.tokens):
            raise TypeError("Vocab: tokens must be a tuple of non-empty strings, e.g. Vocab(('a', 'b'))")
        if list(self.tokens) != sorted(set(self.tokens)):
            raise ValueError("Vocab: tokens must be sorted and unique, e.g. Vocab(tuple(sorted(set(text))))")
        if self.level == "char" and any(len(t) != 1 for t in self.tokens):
            bad = next(t for t in self.tokens if len(t) != 1)
            raise ValueError(f"Vocab: a 'char' vocabulary holds single characters, got {bad!r}; "
                             "use level='word' for words")
        if self.unknown in self.tokens:
            raise ValueError(f"Vocab: the unknown symbol {self.unknown!r} is also a token; choose another")

    @property
    def size(self) -> int:
        """V = len(tokens) + 1: the known tokens and the unknown."""
        return len(self.tokens) + 1

    @property
    def unknown_id(self) -> int:
        """The id of every token outside ``tokens``: V − 1."""
        return len(self.tokens)


def words(text: str) -> list[str]:
    """The words of ``text``: its runs of letters, digits and '_' (regex ``\\w+``), lower-cased;
    punctuation and white space separate words and are dropped.

    >>> words("The cat sat; the CAT!")
    ['the', 'cat', 'sat', 'the', 'cat']
    """
    return re.findall(r"\w+", text.lower())


def tokenize(vocab: Vocab, text: str) -> list[str]:
    """``text`` cut into the vocabulary's tokens: its characters, or its ``words``."""
    return list(text) if vocab.level == "char" else words(text)


def build_vocab(counts: collections.Counter, level: str, unknown: str, max_size: int | None) -> Vocab:
    """The ``Vocab`` of the counted tokens, keeping the ``max_size − 1`` most frequent (ties to
    the token that sorts first) when ``max_size`` is given; ``unknown`` is never a token."""
    counts = collections.Counter({t: c for t, c in counts.items() if t != unknown})
    kept = sorted(counts)
    if max_size is not None:
        if not isinstance(max_size, int) or max_size < 1:
            raise ValueError(f"{level}_vocab: max_size must be an int >= 1 (the unknown counts as one), "
                             f"got {max_size!r}")
        kept = sorted(sorted(kept, key=lambda t: -counts[t])[:max_size - 1])
    return Vocab(tuple(kept), unknown, level)


def pieces(name: str, text: str | Iterable[str]) -> list[str]:
    """``text`` as a list of strings (one string, or several documents)."""
    parts = [text] if isinstance(text, str) else list(text)
    if not all(isinstance(p, str) for p in parts):
        raise TypeError(f"{name}: expected a string or strings, got {type(text).__name__}")
    return parts


def char_vocab(text: str | Iterable[str], *, unknown: str = "\ufffd", max_size: int | None = None) -> Vocab:
    """The characters of ``text`` (a string, or several), sorted by code point, plus the unknown.

    ``max_size=V`` keeps the V − 1 most frequent characters (ties to the lower code point); the
    rest become the unknown. A character equal to ``unknown`` is encoded as the unknown id,
    which decodes back to the same character.

    >>> v = char_vocab("hello")
    >>> v.tokens, v.size, v.unknown_id
    (('e', 'h', 'l', 'o'), 5, 4)
    """
    counts = collections.Counter()
    for part in pieces("char_vocab", text):
        counts.update(part)
    return build_vocab(counts, "char", unknown, max_size)


def word_vocab(docs: str | Iterable[str], *, unknown: str = "<unk>", max_size: int | None = None) -> Vocab:
    """The ``words`` of ``docs`` (a string, or several), sorted, plus the unknown ``'<unk>'``;
    ``max_size=V`` keeps the V − 1 most frequent (ties to the word that sorts first).

    >>> word_vocab(["The cat sat", "the dog"]).tokens
    ('cat', 'dog', 'sat', 'the')
    """
    counts = collections.Counter()
    for part in pieces("word_vocab", docs):
        counts.update(words(part))
    return build_vocab(counts, "word", unknown, max_size)


def encode(vocab: Vocab, text: str) -> np.ndarray:
    """The ids of ``text``'s tokens: id(t) = i where tokens[i] = t, else V − 1 (the unknown).

    Shapes: a text of N tokens (characters, or ``words``) → ids (N,) int32.

    >>> encode(char_vocab("hello"), "hole!")
    array([1, 3, 2, 0, 4], dtype=int32)
    """
    if not isinstance(text, str):
        raise TypeError(f"encode: expected a string, got {type(text).__name__}")
    if vocab.level == "word":
        index = {t: i for i, t in enumerate(vocab.tokens)}
        return np.array([index.get(w, vocab.unknown_id) for w in words(text)], dtype=np.int32)
    # characters as code points; the tokens are sorted by code point, so a binary search finds them
    points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)  # (N,)
    known = np.array([ord(t) for t in vocab.tokens], dtype=np.uint32)  # (V − 1,)
    i = np.searchsorted(known, points)  # (N,) in 0..V−1
    if not len(known):  # a vocabulary of the unknown alone
        return np.full(len(points), vocab.unknown_id, dtype=np.int32)
    found = (i < len(known)) & (known[np.minimum(i, len(known) - 1)] == points)  # (N,)
    return np.where(found, i, vocab.unknown_id).astype(np.int32)


def check_ids(name: str, ids: Any, size: int, owner: str) -> np.ndarray:
    """``ids`` as a numpy array, checked to be a 1-D array of integers in 0..size−1 (empty is
    fine); the errors name ``name`` and the range's ``owner`` ("the vocabulary's")."""
    ids = np.asarray(ids)
    if ids.size == 0:
        return ids
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"{name}: expected a 1-D array of integer ids (N,), got shape {ids.shape} dtype "
                        f"{ids.dtype}; decode a batch (B, T) row by row")
    bad = (ids < 0) | (ids >= size)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name}: ids[{i}] = {ids[i]} is outside {owner} 0..{size - 1}")
    return ids


def decode(vocab: Vocab, ids: Any) -> str:
    """The text of ``ids``: tokens[id] (``unknown`` for V − 1), joined with nothing for
    characters and with one space for words. decode(encode(t)) = t for a text whose characters
    are all in a char vocabulary (for words: the words, lower-cased, space-separated).

    Shapes: ids (N,) integers in 0..V−1 (numpy, jax or a list) → a string.
    """
    ids = check_ids("decode", ids, vocab.size, "the vocabulary's")
    if ids.size == 0:
        return ""
    table = np.array([*vocab.tokens, vocab.unknown], dtype=object)
    return ("" if vocab.level == "char" else " ").join(table[ids])


def one_hot(ids: Any, n: int, dtype: Any = np.float32) -> Any:
    """onehot(id)_v = [id = v]: each id becomes the unit vector e_id of length n.

    An id outside 0..n−1 (negative ones included) gives a row of zeros, as ``jax.nn.one_hot``.
    numpy (or list) ids give a numpy array, jax ids a jax array (so it works under ``jit``).

    Shapes: ids (...) integers → (..., n) of ``dtype`` (float32).

    >>> one_hot(np.array([2, 0]), 3)
    array([[0., 0., 1.],
           [1., 0., 0.]], dtype=float32)
    """
    xp = jnp if isinstance(ids, jax.Array) else np
    ids = xp.asarray(ids)
    if not xp.issubdtype(ids.dtype, xp.integer):
        raise TypeError(f"one_hot: expected integer ids, got dtype {ids.dtype}")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"one_hot: n (the number of classes) must be a positive int, got {n!r}")
    v = xp.arange(n).reshape((1,) * ids.ndim + (n,))  # (1, ..., 1, n)
    return (xp.expand_dims(ids, -1) == v).astype(dtype)  # (..., n)


def bag_of_words(docs: Sequence[str], vocab: Vocab) -> np.ndarray:
    """Bag of words: b_{d,v} = Σ_t [id_{d,t} = v] = (Σ_t onehot(id_{d,t}))_v, how many times
    token v occurs in document d, whatever the order. Unknown tokens are counted in column V − 1.
    With a word vocabulary it is the course's bag of words; with a char one, a bag of characters.

    Shapes: D documents → counts (D, V) float32 (the sum of float32 one-hot vectors).

    >>> v = word_vocab(["the cat", "the dog"])
    >>> bag_of_words(["the cat saw the dog"], v)
    array([[1., 1., 2., 1.]], dtype=float32)
    """
    if isinstance(docs, str):
        raise TypeError("bag_of_words: expected a sequence of documents, got one string; "
                        "pass [text] for a single document")
    rows = [np.bincount(encode(vocab, doc), minlength=vocab.size) for doc in docs]
    return np.array(rows, dtype=np.float32).reshape(len(rows), vocab.size)


def windows(ids: Any, seq_len: int, stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Next-token pairs cut from one stream: x_i = ids[i·s : i·s + T], y_i = ids[i·s + 1 : i·s + T + 1].

    y is x shifted by one place in the stream, so y_{i,t} is the token that follows x_{i,t}: a
    language model's target. Windows start every s = ``stride`` tokens (default T: windows that
    do not overlap) while the target still fits, so N = ⌊(L − T − 1)/s⌋ + 1; the last
    (L − T − 1) mod s tokens are not used as windows' starts.

    Shapes: ids (L,) → x (N, T), y (N, T), of ids' dtype.

    >>> x, y = windows(np.arange(7), 3)
    >>> x.tolist(), y.tolist()
    ([[0, 1, 2], [3, 4, 5]], [[1, 2, 3], [4, 5, 6]])
    """
    ids = np.asarray(ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"windows: expected a 1-D stream of integer ids (L,), got shape {ids.shape} "
                        f"dtype {ids.dtype}")
    stride = seq_len if stride is None else stride
    for name, value in (("seq_len", seq_len), ("stride", stride)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"windows: {name} must be a positive int, got {value!r}")
    if len(ids) < seq_len + 1:
        raise ValueError(f"windows: a stream of {len(ids)} ids is too short for one window of "
                         f"seq_len={seq_len} and its target (needs seq_len + 1 = {seq_len + 1})")
    pairs = np.lib.stride_tricks.sliding_window_view(ids, seq_len + 1)[::stride]  # (N, T + 1)
    return np.ascontiguousarray(pairs[:, :-1]), np.ascontiguousarray(pairs[:, 1:])  # (N, T), (N, T)
