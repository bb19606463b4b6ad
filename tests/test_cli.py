import json
import os
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


def test_train_keeps_a_compilation_cache_that_changes_no_result(tmp_path):
    """--compilation_cache: the first run fills the folder, the second (served from it) writes
    the same metrics; 'none' writes no cache."""
    cache = tmp_path / "cache"
    outs = []
    for name in ("a", "b"):
        r = run("train", "--epochs=1", "--progress=false", f"--workdir={tmp_path / name}",
                f"--compilation_cache={cache}")
        assert r.returncode == 0, r.stderr
        outs.append((tmp_path / name / "metrics.jsonl").read_text())
        if name == "a":
            entries = sorted(p.name for p in cache.iterdir())
            assert len(entries) >= 3  # init, the train step, the eval step at least
    assert outs[0] == outs[1]
    assert sorted(p.name for p in cache.iterdir()) == entries  # the second run compiled nothing new
    r = run("train", "--epochs=1", "--progress=false", f"--workdir={tmp_path / 'c'}",
            "--compilation_cache=none", env={**os.environ, "JDL_CACHE": str(tmp_path / "unused")})
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "unused").exists()


def test_an_unusable_compilation_cache_is_a_warning_not_a_failure(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    r = run("train", "--epochs=1", "--progress=false", f"--workdir={tmp_path / 'w'}",
            f"--compilation_cache={blocker / 'cache'}")
    assert r.returncode == 0, r.stderr
    assert "cannot use" in r.stderr and "compiling without it" in r.stderr
