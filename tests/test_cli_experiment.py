"""`jdl experiment NAME` and `jdl bench` run the checkout's experiments and harness."""

import json
import subprocess
import sys

JDL = [sys.executable, "-m", "jdl.cli"]


def run(*args, cwd=None):
    return subprocess.run([*JDL, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_experiment_runs_in_the_callers_directory_and_writes_its_results(tmp_path):
    r = run("experiment", "perceptron", "--quick", "--workdir=out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    # the perceptron learns AND and never fits XOR: numbers, not just files
    assert results["perceptron"]["and"]["accuracy"] == 1.0
    assert results["perceptron"]["xor"]["accuracy"] < 1.0
    assert (tmp_path / "out" / "perceptron.png").stat().st_size > 1000


def test_unknown_experiment_lists_the_valid_ones():
    r = run("experiment", "nope")
    assert r.returncode != 0
    assert "expected one of" in r.stderr and "perceptron" in r.stderr and "'nope'" in r.stderr
