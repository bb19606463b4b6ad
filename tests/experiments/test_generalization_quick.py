"""The generalization experiments whose parts are tested elsewhere, run end to end in --quick
mode: each writes its JSON and plot, and its headline numbers hold what the theory says."""

import json

from experiments import dying_relu, regularized_boundaries, sgd_noise


def test_sgd_noise_quick_gd_converges_and_sgd_stays_in_its_predicted_ball(tmp_path):
    r = sgd_noise.run(str(tmp_path), quick=True)
    balls = r["noise_ball"]
    assert balls["lr=0.05,B=all"]["level"] < 1e-8  # full-batch GD reaches the optimum
    for b in (1, 10):  # SGD's stationary E‖θ − θ*‖² ≈ α·trΣ/(B(2 − α)), and shrinks with B
        ball = balls[f"lr=0.05,B={b}"]
        assert 0.5 * ball["predicted"] < ball["level"] < 2.0 * ball["predicted"]
    assert balls["lr=0.05,B=1"]["level"] > 3 * balls["lr=0.05,B=10"]["level"]
    saved = json.loads((tmp_path / "results.json").read_text())["noise_ball"]
    assert saved["lr=0.05,B=10"]["level"] == float(balls["lr=0.05,B=10"]["level"])
    assert (tmp_path / "noise_ball.png").stat().st_size > 1000


def test_regularized_boundaries_and_dying_relu_quick(tmp_path):
    r = regularized_boundaries.run(str(tmp_path / "rb"), quick=True)
    assert set(r["configs"]) == {"none", "l2", "dropout", "early_stopping"}
    assert all(0.5 < c["test_accuracy"] <= 1.0 for c in r["configs"].values())
    assert (tmp_path / "rb" / "regularized_boundaries.png").stat().st_size > 1000
    d = dying_relu.run(str(tmp_path / "dr"), quick=True)
    relu = d["runs"]["plain"]["relu"]
    assert relu["1.0"]["dead_after"] > relu["0.01"]["dead_after"]  # a large step kills ReLU units
    assert (tmp_path / "dr" / "dying_relu.png").stat().st_size > 1000
