"""`jdl train --model=ssd --dataset=shapes`: a tiny run (one epoch on the first 300 training
images, ``--train_size``) writes metrics.jsonl (loss and validation mAP per epoch), summary.json
(test mAP, measured once on the whole test set) and predictions.png."""

import json
import subprocess
import sys


def test_train_ssd_on_shapes_writes_detection_metrics(tmp_path):
    r = subprocess.run([sys.executable, "-m", "jdl.cli", "train", "--model=ssd", "--dataset=shapes", "--epochs=1",
                        "--batch_size=128", "--train_size=300", "--hidden=4,8,8", "--progress=false",
                        f"--workdir={tmp_path}"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "ssd on shapes: test mAP@0.5" in r.stdout
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 1 and lines[0]["step"] == 300 // 128  # whole batches of the 300
    assert lines[0]["train_loss"] > 0 and 0 <= lines[0]["validation_map50"] <= 1
    summary = json.loads((tmp_path / "summary.json").read_text())
    test = summary["test"]
    assert 0 <= test["map"] <= test["map50"] <= 1 and set(test["ap50"]) == {"square", "circle", "triangle", "cross"}
    assert summary["config"]["model"] == "ssd" and summary["config"]["detection"]["epochs"] == 1
    assert summary["config"]["train_size"] == 300
    assert summary["best_epoch"] == 1 and (tmp_path / "predictions.png").stat().st_size > 0
