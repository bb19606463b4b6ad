import json
import os
import subprocess
import sys

import pytest

JDL = [sys.executable, "-m", "jdl.cli"]


def run(*args, **kw):
    return subprocess.run([*JDL, *args], capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two runs of the same command, seed 5, 2 epochs, with a fresh --compilation_cache: the
    first fills the folder, the second is served from it (one pair of runs for the two tests
    below). Returns (the parent folder, both metrics.jsonl texts, the cache's entries after the
    first run)."""
    root = tmp_path_factory.mktemp("two_runs")
    cache, outs = root / "cache", []
    for name in ("a", "b"):
        r = run("train", "--epochs=2", "--progress=false", f"--workdir={root / name}", "--seed=5",
                f"--compilation_cache={cache}")
        assert r.returncode == 0, r.stderr
        assert "test accuracy" in r.stdout
        outs.append((root / name / "metrics.jsonl").read_text())
        if name == "a":
            entries = sorted(p.name for p in cache.iterdir())
    return root, outs, entries


def test_train_same_seed_writes_identical_metrics(two_runs):
    root, outs, _ = two_runs
    assert outs[0] == outs[1] and len(outs[0].splitlines()) == 2
    summary = json.loads((root / "a" / "summary.json").read_text())
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


def test_train_keeps_a_compilation_cache_that_changes_no_result(two_runs, tmp_path):
    """--compilation_cache: the first run fills the folder, the second (served from it) writes
    the same metrics; 'none' writes no cache."""
    root, outs, entries = two_runs
    assert len(entries) >= 3  # init, the train step, the eval step at least
    assert outs[0] == outs[1]
    assert sorted(p.name for p in (root / "cache").iterdir()) == entries  # the second run compiled nothing new
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
