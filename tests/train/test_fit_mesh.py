"""``fit(mesh=...)``: 8 forced CPU devices and 2 processes train like one device (same global
batch; BatchNorm and dropout included), replicated or with params and optimizer state sharded
(``fsdp=True``), and checkpoints written on 8 devices resume on 1 and
vice versa. Tolerance: float32 reductions reorder across devices, so 1e-5 of each array's scale
(measured: about 1e-7)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import devices_xla_flags
from tests.train import fit_mesh_worker as worker

ROOT = Path(__file__).resolve().parents[2]
TOL, TIMEOUT_S = 1e-5, 240


def _env(devices: int) -> dict:
    env = dict(os.environ, XLA_FLAGS=devices_xla_flags(devices), JAX_PLATFORMS="cpu",
               PYTHONPATH=str(ROOT))
    env.pop("JAX_NUM_CPU_DEVICES", None)
    return env


def _close(got: dict, want: dict, what: str) -> None:
    assert set(got) == set(want), what
    for name, b in want.items():
        a, scale = np.asarray(got[name], np.float64), max(float(np.max(np.abs(b))), 1.0)
        diff = float(np.max(np.abs(a - b)))
        assert diff <= TOL * scale, f"{what}: {name} differs by {diff:.3g} (scale {scale:.3g})"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One device here (the reference, and 2 epochs to be finished on 8), then 8 devices in a
    subprocess, then here again finishing the 8-device run's checkpoints."""
    root = tmp_path_factory.mktemp("mesh")
    reference = worker.arrays(worker.run(root / "reference"))
    worker.run(root / "one_then_eight", epochs=2, checkpoints=True)
    done = subprocess.run([sys.executable, str(Path(worker.__file__)), str(root), "--devices=8"], env=_env(8),
                          cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-4000:]
    eight_then_one = worker.arrays(worker.run(root / "eight_then_one", checkpoints=True))
    loaded = {name: dict(np.load(root / f"{name}.npz")) for name in ("full", "one_then_eight", "fsdp")}
    return root, reference, loaded["full"], loaded["one_then_eight"], eight_then_one, loaded["fsdp"]


def test_eight_devices_train_like_one(runs):
    _, reference, eight = runs[:3]
    _close(eight, reference, "8 devices vs 1")
    assert reference["history/validation_accuracy"][-1] > 0.5  # it learned something (chance: 1/3)


def test_fsdp_shards_params_and_trains_like_one_device(runs):
    root, reference, fsdp = runs[0], runs[1], runs[5]
    _close(fsdp, reference, "FSDP on 8 devices vs 1")
    sharded = dict(line.split(" ", 1) for line in (root / "fsdp_sharded.txt").read_text().splitlines())
    # after training, the (8, 16) and (16, 3) weights are still split along their 16-long axis
    # (the step kept the layout), BatchNorm's (16,) too; the (3,) bias stays whole
    assert sharded["['1_dense']['w']"] == "P(None, 'data')"
    assert sharded["['5_dense']['w']"] in ("P('data',)", "P('data', None)")  # trailing None or not
    assert "['5_dense']['b']" not in sharded


def test_checkpoints_cross_between_eight_devices_and_one(runs):
    _, reference, _, one_then_eight, eight_then_one, _ = runs
    _close(one_then_eight, reference, "written on 1 device, finished on 8")
    _close(eight_then_one, reference, "written on 8 devices, finished on 1")


def test_two_processes_train_like_one(runs, tmp_path):
    reference = runs[1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [str(tmp_path), "--devices=4", f"--coordinator=127.0.0.1:{port}", "--num_processes=2"]
    procs = [subprocess.Popen([sys.executable, str(Path(worker.__file__)), *args, f"--process_id={i}"], env=_env(2),
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    try:
        logs = [p.communicate(timeout=TIMEOUT_S)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert all(p.returncode == 0 for p in procs), "\n".join(log[-3000:] for log in logs)
    _close(dict(np.load(tmp_path / "full.npz")), reference, "2 processes vs 1")
    _close(dict(np.load(tmp_path / "fsdp.npz")), reference, "FSDP over 2 processes vs 1")
    finished = worker.arrays(worker.run(tmp_path / "two_then_one", checkpoints=True))
    _close(finished, reference, "checkpoints written by 2 processes, finished by 1")
    lines = (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == worker.EPOCHS  # one writer, process 0 (two would have doubled the records)


def test_batch_size_not_divisible_by_the_devices_is_a_clear_error(runs):
    message = (runs[0] / "indivisible.txt").read_text()
    assert "batch_size=30 is not divisible by the 8 devices of the mesh" in message and "use 24 or 32" in message


def test_accumulation_must_divide_the_batch_on_a_mesh_too():
    import jdl
    from jdl import distributed

    mesh = distributed.data_mesh(1)
    train, validation = worker.data()
    with pytest.raises(ValueError, match="accumulate_steps=3 must divide batch_size=32"):
        jdl.train.fit(jdl.models.mlp([3]), jdl.losses.softmax_cross_entropy, jdl.optim.sgd(0.1), train,
                      mesh=mesh, batch_size=32, accumulate_steps=3, progress=False)
