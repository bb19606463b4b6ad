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


def test_detectors_refuse_the_flags_they_do_not_read_and_take_the_rest():
    """--optimizer/--schedule (and every other classifier flag a detector does not read) are
    refused, named, before any data is loaded; --learning_rate and --weight_decay reach the
    detection TrainConfig; every TrainConfig field is either read or refused."""
    import dataclasses

    import pytest
    from absl import app

    from jdl.cli.config import TrainConfig
    from jdl.cli.train_detection import UNREAD, detection_command, detection_settings

    with pytest.raises(app.UsageError, match=r"--model=ssd does not take --optimizer=sgd, --schedule=cosine; "
                                             r"detectors train with AdamW"):
        detection_command(TrainConfig(model="ssd", dataset="shapes", optimizer="sgd", schedule="cosine"))
    with pytest.raises(app.UsageError, match=r"--model=yolo does not take --warmup_steps=5, --checkpoint_every=7;"):
        detection_command(TrainConfig(model="yolo", dataset="shapes", warmup_steps=5, checkpoint_every=7))
    settings = detection_settings(TrainConfig(model="ssd", dataset="shapes", learning_rate=0.01, weight_decay=0.2,
                                              epochs=3, batch_size=16, seed=4, early_stopping_patience=2))
    assert (settings.learning_rate, settings.weight_decay, settings.epochs, settings.batch_size, settings.seed,
            settings.patience) == (0.01, 0.2, 3, 16, 4, 2)
    read = {"model", "dataset", "hidden", "data_dir", "validation_fraction", "batch_size", "epochs", "seed", "workdir",
            "progress", "learning_rate", "weight_decay", "early_stopping_patience", "compilation_cache", "coordinator",
            "num_processes", "process_id", "keep_host_memory", "train_size"}  # progress: detectors show no bar, so
    # --progress=false holds; keep_host_memory (when TrainConfig has it) is applied before the dispatch
    assert read.isdisjoint(UNREAD) and {f.name for f in dataclasses.fields(TrainConfig)} <= read | set(UNREAD)
