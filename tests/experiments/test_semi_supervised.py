import json

from experiments import semi_supervised


def test_quick_run_pseudo_labels_are_mostly_right(tmp_path):
    out = semi_supervised.run(str(tmp_path), quick=True)
    t = out["fractions"]["0.1"]
    assert t["n_labels"] == 129  # 10% of the 1,293 training digits, stratified
    run = t["runs"][0]
    first = run["rounds"]["0.9"][0]
    assert first["n_pseudo"] > 300 and first["pseudo_accuracy"] > 0.9  # confident predictions are mostly right
    for m in ("supervised", "pseudo_label", "consistency"):
        assert 0.6 < t[m]["mean"] <= 1.0, m  # far above the 10% of chance
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["fractions"]["0.1"]["pseudo_label"] == t["pseudo_label"]
    assert all((tmp_path / p.split("/")[-1]).stat().st_size > 1000 for p in out["plots"])
