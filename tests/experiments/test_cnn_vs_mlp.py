import json

import pytest
import torch

from experiments import cnn_vs_mlp


def test_quick_run_cnn_beats_logistic_regression_on_digits(tmp_path):
    r = cnn_vs_mlp.run(str(tmp_path), quick=True, datasets="digits", models="logistic,cnn", epochs=2)
    digits = r["digits"]
    # after 2 epochs of Adam the CNN is already far ahead of softmax regression
    assert digits["cnn"]["test_accuracy"] > 0.85
    assert digits["cnn"]["test_accuracy"] > digits["logistic"]["test_accuracy"] + 0.1
    assert digits["logistic"]["params"] == 8 * 8 * 10 + 10
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["paper_mnist1d"] == {"logistic": 0.32, "mlp": 0.68, "cnn": 0.94, "gru": 0.91}
    assert (tmp_path / "cnn_vs_mlp.png").exists()


def test_gru_reads_mnist1d_as_a_sequence(tmp_path):
    r = cnn_vs_mlp.run(str(tmp_path), quick=True, datasets="mnist1d", models="gru", epochs=2)["mnist1d"]
    assert r["gru"]["test_accuracy"] > 0.3  # 2 epochs (80 steps) of 10 classes: chance is 0.1
    # GRU(64) over 40 steps of 1 channel, then Dense(10): torch.nn.GRU's count (two biases) + Linear
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    H = cnn_vs_mlp.GRU_HIDDEN
    assert r["gru"]["params"] == n(torch.nn.GRU(1, H)) + n(torch.nn.Linear(H, 10))


def test_gru_needs_a_sequence():
    with pytest.raises(ValueError, match="'gru' reads sequences"):
        cnn_vs_mlp.make_model("gru", "digits", (8, 8, 1))
