"""experiments/detection.py in --quick mode: every registered detector trains, is scored with
jdl's mAP on the test images and drawn; the numbers are consistent with each other."""

import json

import numpy as np

from experiments import detection


def test_detection_quick_one_detector(tmp_path):
    r = detection.run(str(tmp_path), quick=True, detectors="yolo")
    yolo = r["yolo"]
    t = yolo["test"]
    assert 0.0 <= t["map"] <= t["map50"] <= 1.0  # COCO's mean over 0.5..0.95 cannot exceed AP at 0.5
    assert set(t["ap50"]) == {"square", "circle", "triangle", "cross"}
    np.testing.assert_allclose(np.nanmean(list(t["ap50"].values())), t["map50"], rtol=1e-9)
    assert t["images_per_s"] > 0 and yolo["params"] > 0 and len(yolo["history"]) == detection.QUICK["epochs"]
    groups = yolo["recall_at_0.5"]
    assert groups["all"]["objects"] == groups["overlapping"]["objects"] + groups["isolated"]["objects"]
    assert json.loads((tmp_path / "results.json").read_text())["yolo"]["params"] == yolo["params"]
    assert (tmp_path / "predictions_yolo.png").exists() and (tmp_path / "failures_yolo.png").exists()
