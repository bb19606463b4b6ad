import json

from experiments import perceptron


def test_perceptron_learns_and_or_not_xor_and_mlp_learns_xor(tmp_path):
    r = perceptron.run(str(tmp_path), quick=True)
    p = r["perceptron"]
    assert p["and"]["accuracy"] == 1.0 and p["or"]["accuracy"] == 1.0
    assert p["and"]["converged_epoch"] is not None and p["or"]["converged_epoch"] is not None
    assert p["xor"]["accuracy"] < 1.0 and p["xor"]["converged_epoch"] is None
    assert p["noisy_xor"]["accuracy"] < 0.7  # no line does much better than chance
    assert r["mlp"]["xor"]["accuracy"] == 1.0 and r["mlp"]["noisy_xor"]["accuracy"] > 0.95
    assert json.loads((tmp_path / "results.json").read_text())["mlp"]["xor"]["accuracy"] == 1.0
    assert (tmp_path / "perceptron.png").stat().st_size > 1000
