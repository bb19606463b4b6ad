"""A real training process killed with SIGKILL at several points (between steps, in the middle
of writing a checkpoint: before jdl's record, inside orbax's commit) and stopped with SIGTERM,
resumed each time: it ends bit-identical to a run never interrupted, and every checkpoint
directory on disk is readable after every kill."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np

from jdl.train import checkpoint as ckpt

from . import kill_worker

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = os.path.join(ROOT, "tests", "train", "kill_worker.py")
ENV = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": ROOT,
       "JAX_COMPILATION_CACHE_DIR": os.environ["JDL_TEST_JAX_CACHE"],  # the suite's (tests/conftest.py)
       "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1"}


def _start(workdir, mode):
    return subprocess.Popen([sys.executable, WORKER, str(workdir), mode], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _run(workdir, mode):
    proc = _start(workdir, mode)
    out = proc.communicate(timeout=120)[0]
    return proc.returncode, out


def _all_readable(workdir):
    """Every <step> directory is a complete checkpoint (a kill leaves only orbax's temporary
    directories behind)."""
    found = ckpt.steps(workdir / "checkpoints")
    for s in found:
        ckpt.restore(workdir / "checkpoints" / str(s))
    return found


def test_killed_and_resumed_run_ends_bit_identical(tmp_path):
    ref, run = tmp_path / "uninterrupted", tmp_path / "interrupted"
    kill_worker.main(str(ref), "none")  # the reference in this process: same code, same bits

    # 1. SIGKILL from outside, as soon as the first checkpoint exists (between steps or in a save)
    proc = _start(run, "none")
    deadline = time.time() + 120
    while not ckpt.steps(run / "checkpoints") and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == -signal.SIGKILL, out
    assert _all_readable(run)

    # 2. killed while step 24's record is written into orbax's temporary directory: 24 never appears
    rc, out = _run(run, "kill-record:24")
    assert rc == -signal.SIGKILL, out
    assert 24 not in _all_readable(run)
    assert [n for n in os.listdir(run / "checkpoints") if n.startswith("24" + kill_worker.TMP)]

    # 3. killed inside orbax's commit of step 28
    rc, out = _run(run, "kill-orbax:28")
    assert rc == -signal.SIGKILL, out
    steps = _all_readable(run)
    assert 28 not in steps and 24 in steps  # resumed from 20 and wrote 24 this time
    assert not [n for n in os.listdir(run / "checkpoints") if n.startswith("24" + kill_worker.TMP)]  # cleaned

    # 4. SIGTERM right after step 29: fit saves step 29 (not a multiple of 4) and exits by the signal
    rc, out = _run(run, "term-step:29")
    assert rc == -signal.SIGTERM, out
    assert max(_all_readable(run)) == 29

    # 5. to the end
    rc, out = _run(run, "none")
    assert rc == 0, out
    a, b = ckpt.restore(ref), ckpt.restore(run)
    assert int(a.train_state.step) == int(b.train_state.step) == 30
    for field in ("params", "opt_state", "step"):
        jax.tree.map(np.testing.assert_array_equal, getattr(a.train_state, field), getattr(b.train_state, field))
    np.testing.assert_array_equal(jax.random.key_data(a.train_state.key), jax.random.key_data(b.train_state.key))
    assert (ref / "metrics.jsonl").read_text() == (run / "metrics.jsonl").read_text()
    final = [json.loads((d / "summary.json").read_text())["final"] for d in (ref, run)]
    assert final[0] == final[1] and len((run / "metrics.jsonl").read_text().splitlines()) == 3
