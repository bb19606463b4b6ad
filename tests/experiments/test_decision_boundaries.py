from experiments import decision_boundaries


def test_linear_model_fails_on_circles_and_an_mlp_does_not(tmp_path):
    r = decision_boundaries.run(str(tmp_path), quick=True, widths=(8,))
    acc = r["test_accuracy"]
    assert acc["circles"]["logistic"] < 0.7 and acc["circles"]["mlp_8"] > 0.95
    assert acc["moons"]["mlp_8"] > acc["moons"]["logistic"]
    assert (tmp_path / "decision_boundaries.png").exists()
