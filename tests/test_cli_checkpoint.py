"""`jdl train` with checkpoints: a second call on the same workdir continues the run, --restore
evaluates (or fine-tunes) another run's params, and the new flags refuse bad values."""

import json
import os
import subprocess
import sys
import tempfile

JDL = [sys.executable, "-m", "jdl.cli"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = tempfile.TemporaryDirectory(prefix="jdl-cli-jax-cache-")  # one compile for the three runs
ENV = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": ROOT, "JAX_COMPILATION_CACHE_DIR": CACHE.name,
       "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1"}
COMMON = ["train", "--dataset=xor", "--hidden=8", "--batch_size=100", "--progress=false", "--seed=2",
          "--checkpoint_every=5", "--keep=2"]


def run(*args):
    return subprocess.run([*JDL, *args], capture_output=True, text=True, timeout=300, env=ENV)


def test_second_call_resumes_and_restore_evaluates(tmp_path):
    workdir = tmp_path / "run"
    r = run(*COMMON, "--epochs=2", f"--workdir={workdir}")
    assert r.returncode == 0, r.stderr
    first = (workdir / "metrics.jsonl").read_text().splitlines()
    r = run(*COMMON, "--epochs=3", f"--workdir={workdir}")  # continues at epoch 3 (step 14)
    assert r.returncode == 0, r.stderr
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    assert lines[:2] == first and [json.loads(x)["step"] for x in lines] == [7, 14, 21]  # 700 of xor's 800 examples train, 100 validate
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["steps"] == 21 and summary["config"]["epochs"] == 3
    assert summary["checkpoint"].endswith(os.path.join("checkpoints", "21"))
    steps = sorted(int(s) for s in os.listdir(workdir / "checkpoints") if s.isdigit())
    assert steps[-2:] == [20, 21] and len(steps) <= 3  # the last 2, plus the best epoch's

    r = run(*COMMON, "--epochs=0", f"--restore={workdir}", f"--workdir={tmp_path / 'eval'}")
    assert r.returncode == 0, r.stderr
    test = summary["test"]  # measured once, on the final params, which --restore evaluates again
    assert f"test accuracy {test['accuracy']:.4f}, test loss {test['loss']:.4f}" in r.stdout
    assert f"results in {tmp_path / 'eval'}" in r.stdout

    r = run(*COMMON, "--hidden=16", "--epochs=0", f"--restore={workdir}", f"--workdir={tmp_path / 'other'}")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "jdl train: checkpoint" in r.stderr and "params/1_dense/w: checkpoint (2, 8) float32, model (2, 16)" in r.stderr


def test_bad_checkpoint_flags():
    r = run("train", "--on_nonfinite=explode")
    assert r.returncode != 0 and "value should be one of <stop|skip|ignore>" in r.stderr
    r = run("train", "--keep=0")
    assert r.returncode != 0 and "--keep" in r.stderr
