"""Byte-level BPE: the worked example, exact round trips, naive references for training and
encoding, GPT-2's pre-split regex and the `tokenizers` library's BPE encoder, save/load, errors."""

import collections
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jdl.data import bpe
from jdl.data.bpe import (BPE, SPLIT_PATTERN, bytes_per_token, decode, decode_bytes, encode, encode_bytes,
                          load_bpe, save_bpe, split_chunks, token_table, train_bpe)
from jdl.data.text import windows

SMALL = st.text(alphabet="ab c\n'é", max_size=60)  # few symbols: pairs repeat, merges happen


@pytest.fixture(scope="module")
def pydoc_tok():
    return train_bpe(bpe.pydoc_split_text("train"), 512)


# --- naive references, written for the tests: quadratic and simple ---

def naive_merge(seq, pair, t):
    out, i = [], 0
    while i < len(seq):
        if tuple(seq[i:i + 2]) == pair:
            out.append(t)
            i += 2
        else:
            out.append(seq[i])
            i += 1
    return out


def naive_train(data: bytes, num_merges, pattern):
    """Recount every pair of every chunk occurrence after each merge."""
    seqs = [list(c) for c in split_chunks(pattern, data)]
    merges = []
    for i in range(num_merges):
        counts = collections.Counter(p for s in seqs for p in zip(s, s[1:]))
        if not counts:
            break
        pair = max(counts, key=lambda p: (counts[p], -p[0], -p[1]))
        merges.append(pair)
        seqs = [naive_merge(s, pair, 256 + i) for s in seqs]
    return merges


def naive_encode(merges, data: bytes, pattern):
    """Replay the merges in the order learned over every chunk (what training did to its text)."""
    seqs = [list(c) for c in split_chunks(pattern, data)]
    for i, pair in enumerate(merges):
        seqs = [naive_merge(s, pair, 256 + i) for s in seqs]
    return [t for s in seqs for t in s]


# --- the worked example of the BPE literature: aaabdaaabac → ZabdZabac → ZYdZYac → XdXac ---

@pytest.mark.parametrize("pattern", [None, SPLIT_PATTERN], ids=["one_sequence", "pre_split"])
def test_worked_example_aaabdaaabac(pattern):
    tok = train_bpe("aaabdaaabac", 3, pattern=pattern)
    a, b, c, d = 97, 98, 99, 100
    # aa: 4 pairs (overlaps counted); then Za and ab both occur twice: the tie goes to the smaller pair ab
    assert tok.merges == ((a, a), (a, b), (256, 257))
    assert tok.vocab[256:] == (b"aa", b"ab", b"aaab")
    Z, Y, X = 256, 257, 258
    assert encode(tok, "aaabdaaabac").tolist() == [X, d, X, a, c]
    assert encode(BPE(tok.merges[:1], pattern), "aaabdaaabac").tolist() == [Z, a, b, d, Z, a, b, a, c]
    assert encode(BPE(tok.merges[:2], pattern), "aaabdaaabac").tolist() == [Z, Y, d, Z, Y, a, c]
    # nothing left to merge: 'XdXac' has no pair twice, and training still takes the most frequent
    assert len(train_bpe("ab", 5).merges) == 1 and train_bpe("a b", 5).merges == ((32, 98),)
    assert train_bpe("", 3).merges == () and train_bpe("aaabdaaabac", 0).size == 256


# --- round trips ---

@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_round_trip_on_any_bytes(pydoc_tok, data):
    assert b"".join(split_chunks(SPLIT_PATTERN, data)) == data
    for tok in (pydoc_tok, train_bpe(data, 20), train_bpe(data, 20, pattern=None)):
        ids = encode_bytes(tok, data)
        assert ids.dtype == np.int32 and len(ids) <= len(data)
        assert decode_bytes(tok, ids) == data


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=120))
def test_round_trip_on_any_text(pydoc_tok, text):
    assert decode(pydoc_tok, encode(pydoc_tok, text)) == text
    assert "".join(s.decode("utf-8") for s in split_chunks(SPLIT_PATTERN, text.encode())) == text


def test_invalid_utf8_and_lone_surrogates_round_trip(pydoc_tok):
    data = b"caf\xc3\xa9 \xff\xfe the \xc3 end \xed\xa0\x80"  # é, two invalid bytes, a cut é, a surrogate
    assert decode_bytes(pydoc_tok, encode_bytes(pydoc_tok, data)) == data
    text = "a\ud800b the"
    ids = encode(pydoc_tok, text)
    assert decode(pydoc_tok, ids, errors="surrogatepass") == text
    assert decode(pydoc_tok, ids) == "a\ufffd\ufffd\ufffdb the"  # GPT-2's default: replacement characters


# --- against independent implementations ---

@settings(max_examples=40, deadline=None)
@given(SMALL, st.integers(0, 30), st.sampled_from([SPLIT_PATTERN, None]))
def test_training_agrees_with_recounting_every_step(text, num_merges, pattern):
    data = text.encode()
    assert list(train_bpe(data, num_merges, pattern=pattern).merges) == naive_train(data, num_merges, pattern)


@settings(max_examples=40, deadline=None)
@given(SMALL, SMALL, st.sampled_from([SPLIT_PATTERN, None]))
def test_encode_by_rank_agrees_with_replaying_the_merges(train_text, text, pattern):
    tok = train_bpe(train_text * 2, 25, pattern=pattern)
    assert encode(tok, text).tolist() == naive_encode(tok.merges, text.encode(), pattern)


def test_encode_agrees_with_naive_on_pydoc_validation(pydoc_tok):
    text = bpe.pydoc_split_text("validation")[:3000]
    assert encode(pydoc_tok, text).tolist() == naive_encode(pydoc_tok.merges, text.encode(), SPLIT_PATTERN)


def test_split_pattern_agrees_with_gpt2_regex_on_ascii():
    regex = pytest.importorskip("regex")
    gpt2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
    rng = np.random.default_rng(0)
    alphabet = list("ab Z09_'-.:(\n\t") + ["'s", "'ll", "  ", "  \n"]
    for _ in range(200):
        text = "".join(rng.choice(alphabet, size=rng.integers(0, 40)))
        assert [c.decode() for c in split_chunks(SPLIT_PATTERN, text.encode())] == regex.findall(gpt2, text)
    text = bpe.pydoc_split_text("validation")[:5000]
    assert [c.decode() for c in split_chunks(SPLIT_PATTERN, text.encode())] == regex.findall(gpt2, text)


def gpt2_byte_chars():
    """GPT-2's printable stand-in for each byte: printable Latin-1 bytes stand for themselves,
    the others take the code points 256, 257, … in byte order."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    return [chr(b) if b in keep else chr(next(extra)) for b in range(256)]


def test_encode_agrees_with_tokenizers_byte_level_bpe(pydoc_tok):
    tokenizers = pytest.importorskip("tokenizers")
    chars = gpt2_byte_chars()
    show = ["".join(chars[x] for x in t) for t in pydoc_tok.vocab]
    model = tokenizers.models.BPE(vocab={s: i for i, s in enumerate(show)},
                                  merges=[(show[a], show[b]) for a, b in pydoc_tok.merges])
    hf = tokenizers.Tokenizer(model)
    hf.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    text = bpe.pydoc_split_text("validation")  # letters, digits and punctuation of ASCII and a few more
    text = "".join(ch for ch in text if ch.isascii())
    assert encode(pydoc_tok, text).tolist() == hf.encode(text).ids


# --- compression ---

def test_tokens_decrease_with_merges(pydoc_tok):
    train = bpe.pydoc_split_text("train")[:20000]
    valid = bpe.pydoc_split_text("validation")
    tok = train_bpe(train, 60)
    n_train = [len(encode(BPE(tok.merges[:k]), train)) for k in range(61)]
    assert all(b < a for a, b in zip(n_train, n_train[1:]))  # each merge occurs in its training text
    n_valid = [len(encode(BPE(pydoc_tok.merges[:k]), valid)) for k in (0, 16, 64, 128, 256, 512)]
    assert n_valid[0] == len(valid.encode()) and all(b <= a for a, b in zip(n_valid, n_valid[1:]))
    assert bytes_per_token(pydoc_tok, valid) == pytest.approx(len(valid.encode()) / n_valid[-1])
    assert bytes_per_token(pydoc_tok, valid) > 2  # merges learned on train carry over to unseen text


def test_pydoc_bpe_ids_and_windows(pydoc_tok):
    ids = bpe.pydoc_bpe_ids(pydoc_tok, "validation")
    assert decode(pydoc_tok, ids) == bpe.pydoc_split_text("validation")
    x, y = windows(ids, 32)
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    assert ids.max() < pydoc_tok.size


# --- save, load, table ---

def test_save_load_round_trip(tmp_path, pydoc_tok):
    path = tmp_path / "bpe.json"
    save_bpe(pydoc_tok, str(path))
    tok = load_bpe(str(path))
    assert tok == pydoc_tok and tok.vocab == pydoc_tok.vocab
    text = bpe.pydoc_split_text("test")[:2000]
    np.testing.assert_array_equal(encode(tok, text), encode(pydoc_tok, text))
    raw = train_bpe("aaabdaaabac", 3, pattern=None)
    save_bpe(raw, str(path))
    assert load_bpe(str(path)) == raw and json.loads(path.read_text())["merges"] == [[97, 97], [97, 98], [256, 257]]


def test_token_table_lists_the_learned_tokens(pydoc_tok):
    rows = token_table(pydoc_tok).splitlines()
    assert len(rows) == 1 + 512 and rows[1].split()[0] == "256"
    a, b = pydoc_tok.merges[0]
    assert rows[1].split()[1:4] == [str(a), "+", str(b)] and repr(pydoc_tok.vocab[256]) in rows[1]
    assert token_table(pydoc_tok, 97, 98).splitlines()[1].split() == ["97", "byte", "b'a'"]


# --- errors ---

def test_errors_name_the_function_and_the_bad_value(tmp_path):
    with pytest.raises(ValueError, match=r"train_bpe: num_merges must be an int >= 0, got -1"):
        train_bpe("abc", -1)
    with pytest.raises(ValueError, match=r"num_merges must be an int >= 0, got 2.5"):
        train_bpe("abc", 2.5)
    with pytest.raises(TypeError, match=r"train_bpe: expected a str or bytes, got list"):
        train_bpe(["abc"], 2)
    tok = train_bpe("aaabdaaabac", 3)
    with pytest.raises(ValueError, match=r"decode_bytes: ids\[1\] = 259 is outside the tokenizer's 0\.\.258"):
        decode(tok, [1, 259])
    with pytest.raises(ValueError, match=r"ids\[0\] = -1 is outside"):
        decode_bytes(tok, np.array([-1]))
    with pytest.raises(TypeError, match=r"1-D array of integer ids"):
        decode_bytes(tok, np.zeros((2, 2), np.int32))
    with pytest.raises(TypeError, match=r"encode: expected a str, got bytes; use encode_bytes"):
        encode(tok, b"abc")
    with pytest.raises(ValueError, match=r"BPE: merges\[1\] = \(97, 300\) names a token outside 0\.\.256"):
        BPE(((97, 97), (97, 300)))
    with pytest.raises(ValueError, match=r"merges repeat a pair"):
        BPE(((97, 97), (97, 97)))
    with pytest.raises(TypeError, match=r"BPE: merges must be a sequence of \(a, b\) pairs"):
        BPE(((97, 97, 97),))
    with pytest.raises(ValueError, match=r"token_table: need 0 <= start <= stop <= V = 259"):
        token_table(tok, 0, 300)
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"format": "something", "merges": []}))
    with pytest.raises(ValueError, match=r"load_bpe: not a saved BPE tokenizer .*'something'"):
        load_bpe(str(path))
