"""benchmarks.lstm_variants' process set-up suffixes, and the harness's jdl runner on a mesh."""

import numpy as np
import pytest

from benchmarks import lstm_variants
from benchmarks.workloads import common, mlp


def test_suffixes_set_the_flags_and_the_device_count(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--existing")
    assert lstm_variants.set_up("table/u2+noynn+dp2") == ("table/u2", 2)
    flags = __import__("os").environ["XLA_FLAGS"].split()
    assert flags == ["--existing", "--xla_force_host_platform_device_count=2", lstm_variants.NO_YNN]
    assert lstm_variants.set_up("fused/u4") == ("fused/u4", 1)
    with pytest.raises(ValueError, match=r"\+bogus"):
        lstm_variants.set_up("table+bogus")


def test_jdl_runner_on_a_one_device_mesh_takes_the_same_steps(tmp_path):
    """The mesh path (replicated state, sharded batch) computes the plain path's losses."""
    from jdl.distributed import data_mesh

    options = mlp.configure(quick=True, seed=0, workdir=str(tmp_path))["options"]
    layers = common.load_layers(options["weights"])
    x, y = mlp.data(mlp.BATCH, 0)
    losses = []
    for mesh in (None, data_mesh(1)):
        runner = common.jdl_runner(mlp.jdl_model(), layers, options["optimizer"], x, y, mesh=mesh)
        runner.first_call()
        losses.append([float(runner.step()["loss"]) for _ in range(2)])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-6)
    assert losses[0][1] < losses[0][0]


def test_one_thread_children_run_on_one_core():
    """A child started as ``--threads=1`` starts (ONE_THREAD in XLA_FLAGS, pinned by
    pin_to_one_core) may use one core, so XLA's pool cannot spread a matmul over two: its CPU
    time stays within its wall time (unpinned, XLA:CPU used ~1.75 cores "at one thread")."""
    import json
    import os
    import subprocess
    import sys

    code = ("from benchmarks.timing import pin_to_one_core; pin_to_one_core(); "
            "import json, os, time, jax, jax.numpy as jnp; x = jnp.ones((1024, 1024)); "
            "f = jax.jit(lambda a: a @ a @ a); f(x).block_until_ready(); "
            "t, c = time.perf_counter(), time.process_time(); [f(x).block_until_ready() for _ in range(20)]; "
            "print(json.dumps([len(os.sched_getaffinity(0)), time.process_time() - c, time.perf_counter() - t]))")
    env = lstm_variants.env(1)
    env["PYTHONPATH"] = os.getcwd() + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    cores, cpu, wall = json.loads(proc.stdout.strip().splitlines()[-1])
    assert cores == 1 and "intra_op" not in env["XLA_FLAGS"]
    assert cpu <= 1.1 * wall + 0.01
