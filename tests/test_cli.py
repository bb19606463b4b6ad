import json
import subprocess
import sys

import pytest

JDL = [sys.executable, "-m", "jdl.cli"]


def run(*args, **kw):
    return subprocess.run([*JDL, *args], capture_output=True, text=True, timeout=300, **kw)


def test_train_same_seed_writes_identical_metrics(tmp_path):
    outs = []
    for name in ("a", "b"):
        r = run("train", "--epochs=2", "--progress=false", f"--workdir={tmp_path / name}", "--seed=5")
        assert r.returncode == 0, r.stderr
        assert "test accuracy" in r.stdout
        outs.append((tmp_path / name / "metrics.jsonl").read_text())
    assert outs[0] == outs[1] and len(outs[0].splitlines()) == 2
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["config"]["seed"] == 5 and summary["config"]["model"] == "mlp"


@pytest.mark.parametrize("args, message", [
    (["train", "--optimizer=adamx"], "value should be one of <"),
    (["train", "--dataset=nope"], "--dataset='nope': valid choices are cifar10, circles, digits"),
    (["trian"], "expected a command, one of train"),
    (["train", "--batch_size=0"], "--batch_size"),
])
def test_invalid_flags_list_choices(args, message):
    r = run(*args)
    assert r.returncode != 0
    assert message in r.stderr + r.stdout
