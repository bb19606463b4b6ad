"""jdl.distributed: data-parallel training on a mesh equals training on one device.

JAX reads ``XLA_FLAGS`` (how many CPU devices) and joins a multi-process job only at start, and
this pytest process has one CPU device, so every multi-device check runs
``tests/distributed_worker.py`` in a subprocess: 8 forced CPU devices in one process, and 2
processes on loopback with 2 devices each. Each is bounded by ``TIMEOUT_S``; together they take ~30 s on 2 cores.

Tolerance: float32 results of 10 Adam steps agree within ``TOL`` = 1e-6 of each array's scale
(max |a − b| ≤ 1e-6 · max(|b|, 1)); they are not bit-identical because XLA sums the batch in
another order when it is split over devices (measured: ~1e-7).
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl import distributed
from jdl.train.state import TrainState
from tests import distributed_worker as worker
from tests.helpers import devices_xla_flags

WORKER = Path(__file__).with_name("distributed_worker.py")
ROOT = WORKER.parents[1]
TOL = 1e-6
TIMEOUT_S = 120  # each run takes ~10-15 s alone; room for a loaded CI machine


def _env(devices: int) -> dict[str, str]:
    env = dict(os.environ, XLA_FLAGS=devices_xla_flags(devices),
               JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    env.pop("JAX_NUM_CPU_DEVICES", None)
    return env


def _run(args: list[str], devices: int) -> None:
    done = subprocess.run([sys.executable, str(WORKER), *args], env=_env(devices), cwd=ROOT,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    if done.returncode:
        pytest.fail(f"worker {args} failed:\n{done.stdout}\n{done.stderr[-4000:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _assert_same_run(got: dict, want: dict, what: str) -> None:
    """Every array of ``want`` (loss curve, params, state) agrees within TOL of its scale."""
    assert set(got) == set(want), what
    for name, b in want.items():
        a, scale = got[name], max(float(np.max(np.abs(b))), 1.0)
        diff = float(np.max(np.abs(a - b)))
        assert diff <= TOL * scale, f"{what}: {name} differs by {diff:.3g} (scale {scale:.3g})"


def _prefixed(results, n: int) -> dict[str, np.ndarray]:
    return {k.split("/", 1)[1]: results[k] for k in results if k.startswith(f"{n}/")}


@pytest.fixture(scope="module")
def eight_devices(tmp_path_factory):
    """No mesh, a 1-device mesh and an 8-device mesh, same global batch of 32, one process."""
    out = tmp_path_factory.mktemp("dist") / "eight.npz"
    _run([f"--out={out}", "--devices=0,1,8"], devices=8)
    with np.load(out) as r:
        return {n: _prefixed(r, n) for n in (0, 1, 8)}


def test_one_device_mesh_is_bit_identical_to_no_mesh(eight_devices):
    for name, b in eight_devices[0].items():
        np.testing.assert_array_equal(eight_devices[1][name], b, err_msg=name)


def test_eight_devices_train_like_one(eight_devices):
    _assert_same_run(eight_devices[8], eight_devices[0], "8 devices vs 1")
    assert np.all(np.diff(eight_devices[0]["loss"][[0, -1]]) < 0)  # it did learn


def test_batchnorm_statistics_are_over_the_global_batch(eight_devices):
    """After one step, running var = 0.9·1 + 0.1·σ² with σ² over all 32 rows; per-device
    statistics (4 rows each, averaged) would be off by far more than the tolerance."""
    x, _ = worker.make_data()
    params, _ = worker.init_params(worker.make_model())
    h = x[:worker.BATCH] @ np.asarray(params["0_dense"]["w"])  # (B, 16): the input of BatchNorm
    var_global = 0.9 + 0.1 * h.var(0)
    var_shards = 0.9 + 0.1 * h.reshape(8, worker.BATCH // 8, -1).var(1).mean(0)  # (8, B/8, 16)
    got = eight_devices[8]["state1/1_batchnorm/var"]
    np.testing.assert_allclose(got, var_global, rtol=1e-5)
    assert np.max(np.abs(var_shards - var_global)) > 1e3 * TOL
    for stat in ("mean", "var"):
        np.testing.assert_allclose(eight_devices[8][f"state/1_batchnorm/{stat}"],
                                   eight_devices[0][f"state/1_batchnorm/{stat}"], rtol=0, atol=TOL)


def test_two_processes_train_like_one(tmp_path, eight_devices):
    """2 processes × 2 CPU devices on 127.0.0.1: each loads its 16 rows of every batch of 32;
    only process 0 writes the result, compared with the one-process, no-mesh run."""
    out, coordinator = tmp_path / "two.npz", f"127.0.0.1:{_free_port()}"
    args = [f"--out={out}", "--devices=4", f"--coordinator={coordinator}", "--num_processes=2"]
    procs = [subprocess.Popen([sys.executable, str(WORKER), *args, f"--process_id={i}"],
                              env=_env(2), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for i in range(2)]
    try:
        logs = [p.communicate(timeout=TIMEOUT_S)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    for i, (p, log) in enumerate(zip(procs, logs)):
        assert p.returncode == 0, f"process {i} failed:\n{log[-4000:]}"
    assert "worker 1/2: 4 devices" in logs[1]
    with np.load(out) as r:
        _assert_same_run(_prefixed(r, 4), eight_devices[0], "2 processes vs 1")


# ---------------------------------------------------------------- on this process's one device

def test_batch_size_not_divisible_is_a_clear_error():
    """Only the mesh's size matters, so an abstract 8-device mesh stands in for a real one here
    (the 8-device worker checks a divisible size on real devices)."""
    eight = jax.sharding.AbstractMesh((8,), ("data",))
    distributed.check_batch_size(eight, 32)
    with pytest.raises(ValueError, match=r"^batch_size=30 is not divisible by the 8 devices of the mesh: "
                                         r"each device takes batch_size/8 rows; use 24 or 32, or a mesh "
                                         r"of a divisor of 30 devices$"):
        distributed.check_batch_size(eight, 30)
    with pytest.raises(ValueError, match=r"eval_batch_size=5 is not divisible .* use 8,"):
        distributed.check_batch_size(eight, 5, what="eval_batch_size")
    with pytest.raises(ValueError, match=r"eval_batch_size must be a positive int, got 0"):
        distributed.check_batch_size(distributed.data_mesh(1), 0, what="eval_batch_size")


def test_data_mesh_more_devices_than_exist():
    n = jax.device_count()
    assert distributed.data_mesh().axis_names == ("data",)
    assert distributed.data_mesh().devices.shape == (n,)
    with pytest.raises(ValueError, match=rf"asked for {n + 1} devices but only {n} exist"):
        distributed.data_mesh(n + 1)
    with pytest.raises(ValueError, match="positive int or None, got 0"):
        distributed.data_mesh(0)


def test_replicate_keeps_the_train_state_and_its_key():
    mesh = distributed.data_mesh(1)
    ts = TrainState({"w": np.ones((2, 3), np.float32)}, {}, (), jnp.zeros([], jnp.int32),
                    jax.random.key(3))
    got = distributed.replicate(mesh, ts)
    assert isinstance(got, TrainState)
    assert jax.dtypes.issubdtype(got.key.dtype, jax.dtypes.prng_key)
    np.testing.assert_array_equal(jax.random.key_data(got.key), jax.random.key_data(ts.key))
    for leaf in jax.tree.leaves(got):
        assert leaf.sharding == jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())


def test_local_rows_and_shard_batch_with_one_process():
    mesh = distributed.data_mesh(1)
    assert distributed.local_rows(32, mesh) == slice(0, 32)
    x, y = np.arange(12.0).reshape(4, 3), np.arange(4)
    bx, by = distributed.shard_batch(mesh, (x, y))
    np.testing.assert_array_equal(bx, x)
    assert by.sharding.spec == jax.sharding.PartitionSpec("data")
    with pytest.raises(ValueError, match=r"same leading \(batch\) axis; got shapes \[\(4, 3\), \(3,\)\]"):
        distributed.shard_batch(mesh, (x, y[:3]))


@pytest.mark.parametrize("args, message", [
    (("localhost", 2, 0), r"coordinator must be 'HOST:PORT'"),
    (("127.0.0.1:70000", 2, 0), r"port in 1..65535, got '127.0.0.1:70000'"),
    (("127.0.0.1:1234", 0, 0), r"num_processes must be a positive int, got 0"),
    (("127.0.0.1:1234", 2, 2), r"process_id must be an int in \[0, 2\) for num_processes=2, got 2"),
    (("127.0.0.1:1234", 2, None), r"pass coordinator, num_processes and process_id together"),
])
def test_initialize_rejects_bad_values(args, message):
    with pytest.raises(ValueError, match=message):
        distributed.initialize(*args)


def test_is_primary_in_one_process():
    assert distributed.is_primary()
