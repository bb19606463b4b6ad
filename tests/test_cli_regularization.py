import json
import subprocess
import sys

import pytest

JDL = [sys.executable, "-m", "jdl.cli"]


def run(*args):
    return subprocess.run([*JDL, *args], capture_output=True, text=True, timeout=300)


def test_train_with_every_regularizer(tmp_path):
    r = run("train", "--epochs=2", "--progress=false", f"--workdir={tmp_path}", "--hidden=16",
            "--norm=batch", "--dropout=0.2", "--l1=1e-4", "--l2=1e-3", "--augment", "--label_smoothing=0.1",
            "--early_stopping_patience=1", "--optimizer=sgd", "--learning_rate=0.5")
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["config"]["norm"] == "batch" and summary["config"]["dropout"] == 0.2
    assert "best_epoch" in summary  # early stopping kept the best epoch
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(rec["train_penalty"] > 0 for rec in records)  # the penalty entered the step
    assert summary["best"]["test_accuracy"] > 0.5


def test_invalid_norm_lists_choices():
    r = run("train", "--norm=group")
    assert r.returncode != 0 and "value should be one of <none|batch|layer>" in r.stderr + r.stdout
