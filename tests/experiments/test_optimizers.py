"""The optimizers experiment in quick mode: what its numbers must show."""

import json

from experiments import optimizers


def test_quick_run_shows_oscillation_overshoot_and_learning(tmp_path):
    r = optimizers.run(str(tmp_path), quick=True)
    ravine = r["surfaces"]["ravine"]
    # SGD at η = 0.075 on curvature 25: y ← (1 − 1.875)·y flips sign at every step
    assert ravine["sgd"]["sign_changes"] == ravine["sgd"]["steps"] == 100
    assert ravine["momentum"]["max_overshoot_x"] > 0.5  # momentum runs past the minimum along x
    assert ravine["adagrad"]["sign_changes"] == 0 and ravine["adagrad"]["final_loss"] < 1e-6
    saddle = r["surfaces"]["saddle"]
    assert saddle["sgd"]["distance"] > 0.5 > saddle["adam"]["distance"]  # SGD still near the saddle
    assert r["digits"]["optimizers"]["sgd"]["final_test_accuracy"] > 0.3  # chance is 0.1
    assert json.loads((tmp_path / "results.json").read_text())["surfaces"]["ravine"]["sgd"]["steps"] == 100
    for png in ("surfaces.png", "digits_optimizers.png", "digits_schedules.png"):
        assert (tmp_path / png).stat().st_size > 5000
