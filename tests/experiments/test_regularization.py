import json

from experiments import regularization


def test_quick_run_shows_the_gap_and_l1_sparsity(tmp_path):
    out = regularization.run(str(tmp_path), quick=True, configs="none,l1,dropout")
    c = out["configs"]
    assert c["none"]["train_accuracy"]["mean"] > 0.95  # 200 examples are (nearly) memorized...
    assert c["none"]["gap"]["mean"] > 0.03  # ...and the validation set is not
    assert c["dropout"]["gap"]["mean"] < c["none"]["gap"]["mean"]
    assert c["l1"]["near_zero_w1"] > 1.5 * c["none"]["near_zero_w1"]  # L1 drives weights to 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["configs"]["l1"]["gap"] == c["l1"]["gap"]
    assert 0.5 < c["none"]["test_accuracy"]["mean"] <= 1  # measured once, on the held-out test digits
    assert all((tmp_path / p).stat().st_size > 1000 for p in out["plots"])
