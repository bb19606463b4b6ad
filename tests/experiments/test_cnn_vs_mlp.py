import json

from experiments import cnn_vs_mlp


def test_quick_run_cnn_beats_logistic_regression_on_digits(tmp_path):
    r = cnn_vs_mlp.run(str(tmp_path), quick=True, datasets="digits", models="logistic,cnn", epochs=2)
    digits = r["digits"]
    # after 2 epochs of Adam the CNN is already far ahead of softmax regression
    assert digits["cnn"]["test_accuracy"] > 0.85
    assert digits["cnn"]["test_accuracy"] > digits["logistic"]["test_accuracy"] + 0.1
    assert digits["logistic"]["params"] == 8 * 8 * 10 + 10
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["paper_mnist1d"] == {"logistic": 0.32, "mlp": 0.68, "cnn": 0.94}
    assert (tmp_path / "cnn_vs_mlp.png").exists()
