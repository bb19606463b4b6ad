import json

import numpy as np

from experiments import detection_two_stage


def test_quick_run_trains_scores_and_plots(tmp_path):
    r = detection_two_stage.run(str(tmp_path), quick=True, only="sliding_window")
    res = r["sliding_window"]
    assert 0.0 <= res["map"] <= 1.0 and 0.0 <= res["map50"] <= 1.0
    assert len(res["ap50"]) == 4 and res["images_per_s"] > 0
    assert res["params"] > 0 and np.isfinite(res["history"][-1]["train_loss"])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["detectors"]["sliding_window"]["settings"]["steps"] == 3
    assert (tmp_path / "predictions_sliding_window.png").exists() and (tmp_path / "curves.png").exists()
