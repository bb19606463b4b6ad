import json

import numpy as np
import pytest
import torch

from experiments import seq2seq


def test_reversal_targets_masks_and_teacher_forcing_shift():
    n, W = 300, 9
    d = seq2seq.reversal_data(n, 2, 7, W, seed=1)
    assert d["src"].shape == (n, W) and d["tgt_in"].shape == d["tgt_out"].shape == (n, W + 1)
    assert d["src"].dtype == d["tgt_in"].dtype == d["tgt_out"].dtype == np.int32
    assert set(np.unique(d["lengths"])) == set(range(2, 8))  # every length of U{2 … 7} drawn
    for i in range(n):  # each row rebuilt from its own digits
        L = d["lengths"][i]
        x = d["src"][i, :L]
        assert np.all((x >= seq2seq.DIGIT0) & (x < seq2seq.VOCAB))
        np.testing.assert_array_equal(d["src"][i, L:], seq2seq.PAD)
        np.testing.assert_array_equal(d["tgt_out"][i], [*x[::-1], seq2seq.EOS] + [seq2seq.PAD] * (W - L))
        np.testing.assert_array_equal(d["tgt_in"][i], [seq2seq.BOS, *x[::-1]] + [seq2seq.PAD] * (W - L))
    np.testing.assert_array_equal(d["src_mask"], d["src"] != seq2seq.PAD)
    np.testing.assert_array_equal(d["tgt_mask"], np.arange(W + 1) <= d["lengths"][:, None])
    assert d["src_mask"].dtype == bool and d["tgt_mask"].sum() == (d["lengths"] + 1).sum()
    # teacher forcing: the decoder reads at t + 1 the label of step t
    np.testing.assert_array_equal(d["tgt_in"][:, 1:][d["tgt_mask"][:, 1:]], d["tgt_out"][:, :-1][d["tgt_mask"][:, 1:]])


def test_generator_is_a_pure_function_of_its_seed():
    a, b, c = (seq2seq.reversal_data(16, 1, 8, 8, s) for s in ([0, 1, 5], [0, 1, 5], [0, 1, 6]))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["src"], c["src"])
    with pytest.raises(ValueError, match="reversal_data: need 1 <= min_len <= max_len <= width, got 1, 9, 8"):
        seq2seq.reversal_data(4, 1, 9, 8, 0)


def test_score_reads_exact_match_up_to_eos():
    d = seq2seq.reversal_data(3, 3, 3, 5, seed=0)
    pred = d["tgt_out"].copy()
    pred[:, 4:] = 7  # anything after EOS is ignored
    pred[1, 0] = pred[1, 1]  # one digit wrong
    pred[2, 3] = 5  # no EOS where it belongs
    s = seq2seq.score(pred, d)
    np.testing.assert_array_equal(s["exact"], [True, d["tgt_out"][1, 0] == d["tgt_out"][1, 1], False])
    np.testing.assert_array_equal(s["out_len"], [3, 3, 6])
    assert s["tokens"][2] == pytest.approx(3 / 4)


def test_quick_run_learns_short_strings_and_writes_its_results(tmp_path):
    r = seq2seq.run(str(tmp_path), quick=True)
    cfg = r["config"]
    for name in seq2seq.MODELS:
        run = r["runs"][name]["0"]
        assert len(run["exact_match"]) == cfg["test_max"]
        assert len(run["loss"]) == 4 and run["loss"][-1] < 0.9 * run["loss"][0]  # 10-step means fall
        assert run["loss"][-1] < np.log(seq2seq.VOCAB)  # below a uniform guess
        assert run["token_accuracy"][0] > 0.3  # length 1: chance for the digit is 0.1
        assert 0 <= min(run["exact_match"]) and max(run["exact_match"]) <= 1
    # the LSTM's count against torch's layers: nn.LSTM keeps two biases (b_ih + b_hh), jdl one
    V, E, H = seq2seq.VOCAB, cfg["d_embed"], cfg["hidden"]
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    lstm = 2 * n(torch.nn.Embedding(V, E)) + 2 * (n(torch.nn.LSTM(E, H)) - 4 * H) + n(torch.nn.Linear(H, V))
    assert r["table"]["lstm"]["params"] == lstm
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved["table"]) == set(seq2seq.MODELS)
    assert (tmp_path / "seq2seq.png").exists()
