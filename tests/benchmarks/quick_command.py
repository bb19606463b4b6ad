"""``python -m benchmarks.run --quick`` run as CI runs it, in a subprocess, for the tests that
split the quick command by workload (one file each, so that pytest-xdist's ``--dist loadfile``
spreads them over its workers)."""

import json
import os
import subprocess
import sys

from benchmarks import run

# run in-process by test_harness.py::test_quick_run_end_to_end, not again in a subprocess
IN_PROCESS_EXTRAS = ("per_example",)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_quick(tmp_path, workloads: list[str], extras: list[str], isolation: str = "block") -> tuple[dict, str]:
    """Run the quick command on ``workloads`` (float32 and bfloat16, every implementation) and
    ``extras``; check that it exits 0 and that every row and extra holds a result without error.
    ``isolation``: 'block' runs every measurement in the command's one process (each library
    imported once: the check is that everything runs, not how fast), 'process' in a worker
    process each, as a real run does (test_quick_command_gpt.py keeps that path covered).
    Returns (results.json, stdout)."""
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", "--dtypes=float32,bfloat16",
                           f"--workloads={','.join(workloads)}", f"--extras={','.join(extras)}",
                           f"--isolation={isolation}", f"--out={tmp_path}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=3000)
    assert proc.returncode == 0, proc.stderr[-2000:]
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved["workloads"]) == {name + suffix for name in workloads for suffix in ("", "-bf16")}
    for name, w in saved["workloads"].items():
        assert "skipped" not in w, (name, w)
        for impl in run.IMPLS:
            assert "error" not in w["impls"][impl], (name, impl, w["impls"][impl])
            if "skipped" in w["impls"][impl]:  # only PyTorch's bfloat16 LSTM may be missing on a CPU
                assert (name, impl) == ("char_lstm-bf16", "torch"), (name, impl, w["impls"][impl])
                continue
            assert w["impls"][impl]["step_ms"]["median"] > 0
    assert set(saved["extras"]) == set(extras)
    assert not [e for e in saved["extras"].values() if "error" in e]
    assert "jdl/impl" in proc.stdout  # the table
    return saved, proc.stdout
