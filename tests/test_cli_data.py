"""`jdl data download NAME`, `--data_dir` and JDL_DATA through the command line (no network)."""

import json
import os
import subprocess
import sys

import numpy as np

import jdl

from tests.data.test_mnist_idx import write_split

JDL = [sys.executable, "-m", "jdl.cli"]


def run(*args, env=None):
    full_env = {k: v for k, v in os.environ.items() if k != "JDL_DATA"}  # only what a test sets
    full_env.update({"JAX_PLATFORMS": "cpu", **(env or {})})
    return subprocess.run([*JDL, *args], capture_output=True, text=True, timeout=300, env=full_env)


def test_missing_files_are_a_usage_error_saying_where(tmp_path):
    r = run("train", "--dataset=fashion_mnist", f"--data_dir={tmp_path}")
    assert r.returncode != 0
    out = r.stderr + r.stdout
    assert f"Put these files in {tmp_path / 'fashion_mnist'}" in out
    assert "t10k-labels-idx1-ubyte" in out and "Traceback" not in out


def test_train_reads_idx_files_from_data_dir(tmp_path):
    rng = np.random.default_rng(0)
    # 30 images: the 3 held out for validation (10 %) cover the 3 classes, as a stratified split needs
    write_split(tmp_path / "mnist", "train", rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
                np.arange(30, dtype=np.uint8) % 3, gz=True)
    write_split(tmp_path / "mnist", "t10k", rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
                np.arange(4, dtype=np.uint8) % 3)
    r = run("train", "--dataset=mnist", f"--data_dir={tmp_path}", "--epochs=1", "--batch_size=4",
            "--progress=false", f"--workdir={tmp_path / 'run'}")
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["config"]["dataset"] == "mnist" and "test accuracy" in r.stdout


def test_download_mnist1d_is_offline_and_load_reads_the_cache_via_env(tmp_path, monkeypatch):
    r = run("data", "download", "mnist1d", f"--data_dir={tmp_path}")
    assert r.returncode == 0, r.stderr
    cache = tmp_path / "mnist1d" / "mnist1d_default.npz"
    assert cache.is_file() and "no network" in r.stdout
    before = cache.stat().st_mtime_ns
    monkeypatch.setenv("JDL_DATA", str(tmp_path))
    x, y = jdl.data.load("mnist1d", "test")
    assert cache.stat().st_mtime_ns == before  # read, not regenerated
    with np.load(cache) as f:
        np.testing.assert_array_equal(x[..., 0], f["x_test"])
        np.testing.assert_array_equal(y, f["y_test"])


def test_data_command_usage_errors(tmp_path):
    r = run("data", "download", "imagenet", f"--data_dir={tmp_path}")
    assert r.returncode != 0
    assert "unknown data set 'imagenet'; downloadable: cifar10, fashion_mnist, mnist, mnist1d" in r.stderr + r.stdout
    r = run("data", "fetch")
    assert r.returncode != 0
    assert "expected `jdl data download NAME`" in r.stderr + r.stdout
