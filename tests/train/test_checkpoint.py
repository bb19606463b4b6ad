"""Checkpoints on their own: exact round trip, refusal on shape mismatch, fallback past corrupt
or unfinished checkpoints, retention of the last K and the best."""

import json
import logging
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl.train import checkpoint as ckpt
from jdl.train import init_train_state
from tests.helpers import devices_xla_flags, draw_normal


def _state(hidden=8, seed=0):
    optimizer = jdl.optim.sgd(lambda t: 0.1 / (1 + t))  # a schedule: the opt_state has a count
    return init_train_state(jdl.models.mlp([hidden, 3]), optimizer, jax.ShapeDtypeStruct((4, 5), jnp.float32), seed)


def _leaves_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


def test_round_trip_is_exact_and_keeps_structure(tmp_path):
    ts = _state(seed=1)
    ts = ts._replace(step=jnp.asarray(7, jnp.int32),
                     opt_state=jax.tree.map(lambda x: x + 3, ts.opt_state))
    path = ckpt.save(tmp_path, ts, {"config": {"model": "mlp"}})
    assert path == os.path.join(tmp_path, "7")
    back = ckpt.restore(tmp_path, _state(seed=2))  # target of the same model, other values
    _leaves_equal(back.train_state.params, ts.params)
    _leaves_equal(back.train_state.opt_state, ts.opt_state)
    assert type(back.train_state.opt_state[0]) is type(ts.opt_state[0])  # NamedTuple, not a dict
    assert int(back.train_state.step) == 7
    np.testing.assert_array_equal(jax.random.key_data(back.train_state.key), jax.random.key_data(ts.key))
    # the restored key draws the same numbers
    np.testing.assert_array_equal(draw_normal(back.train_state.key, (3,)), draw_normal(ts.key, (3,)))
    meta = back.meta
    assert meta["config"] == {"model": "mlp"} and meta["versions"]["jax"] == jax.__version__
    assert meta["versions"]["jdl"] == jdl.__version__ and meta["shapes"]["params/1_dense/w"] == [[5, 8], "float32"]
    # without a target: plain trees, the same numbers
    raw = jdl.train.restore(tmp_path)
    _leaves_equal(raw.train_state.params, ts.params)


def test_mismatch_lists_every_differing_path(tmp_path):
    ckpt.save(tmp_path, _state(hidden=8))
    with pytest.raises(ckpt.CheckpointMismatch) as e:
        ckpt.restore(tmp_path, _state(hidden=16))
    message = str(e.value)
    assert "params/1_dense/w: checkpoint (5, 8) float32, model (5, 16) float32" in message
    assert "params/1_dense/b: checkpoint (8,) float32, model (16,) float32" in message
    assert "params/3_dense/w: checkpoint (8, 3) float32, model (16, 3) float32" in message
    assert "3 paths differ" in message  # 3_dense/b (3,) fits; sgd keeps no per-param state


def _data_files(path):
    """The files of orbax's array data (OCDBT ``d/`` folders) of checkpoint ``path``."""
    return [os.path.join(root, n) for root, _, names in os.walk(os.path.join(path, ckpt.STATE))
            if os.path.basename(root) == "d" for n in names]


def _truncate(path):
    for victim in _data_files(path):
        with open(victim, "r+b") as f:
            f.truncate(os.path.getsize(victim) // 2)


def _corrupt(path, leaf):
    """One byte of ``leaf``'s values changed in every data file holding them: same sizes, other
    values (orbax itself does not notice)."""
    data, changed = np.asarray(leaf).tobytes(), 0
    for victim in _data_files(path):
        with open(victim, "r+b") as f:
            at = f.read().find(data)
            if at >= 0:
                f.seek(at + len(data) // 2)
                f.write(bytes([data[len(data) // 2] ^ 0xFF]))
                changed += 1
    assert changed, "the leaf's bytes were not found in the data files"


def test_corrupt_truncated_or_unfinished_checkpoint_falls_back(tmp_path, caplog):
    ts = _state(hidden=64)  # 1_dense/w of 1280 bytes: kept outside OCDBT's checksummed b-tree nodes
    for t in (1, 2, 3):
        ckpt.save(tmp_path, ts._replace(step=jnp.asarray(t, jnp.int32),
                                        params=jax.tree.map(lambda p: p + t, ts.params)))
    # step 1 again with values of all magnitudes: zstd leaves them as they are, so a byte of them
    # can be found in the data files and changed
    rng = np.random.default_rng(0)
    noise = jax.tree.map(lambda p: (rng.standard_normal(p.shape) * 10.0 ** rng.integers(-30, 30, p.shape))
                         .astype(np.float32), ts.params)
    ckpt.save(tmp_path, ts._replace(step=jnp.asarray(1, jnp.int32), params=noise), replace=True)
    _truncate(os.path.join(tmp_path, "3"))
    with caplog.at_level(logging.WARNING):
        back = ckpt.restore(tmp_path, _state(hidden=64))
    assert int(back.train_state.step) == 2 and back.path.endswith("2")
    assert os.path.join(str(tmp_path), "3", "state") in caplog.text and "falling back" in caplog.text
    _leaves_equal(back.train_state.params, jax.tree.map(lambda p: p + 2, ts.params))

    os.remove(os.path.join(tmp_path, "2", ckpt.RECORD))  # a record lost
    _corrupt(os.path.join(tmp_path, "1"), noise["1_dense"]["w"])
    with pytest.raises(ckpt.CheckpointError) as e:
        ckpt.restore(tmp_path, _state(hidden=64))
    message = str(e.value)
    assert "3/state" in message and "2/meta/jdl.json is missing" in message
    assert "1/state: params/1_dense/w is corrupt" in message
    with pytest.raises(ckpt.CheckpointNotFound, match="no checkpoint in"):
        ckpt.restore(tmp_path / "nothing")


def test_unparseable_record_is_named(tmp_path):
    ckpt.save(tmp_path, _state())
    with open(os.path.join(tmp_path, "0", ckpt.RECORD), "w") as f:
        f.write('{"files": ')
    with pytest.raises(ckpt.CheckpointError, match=r"0/meta/jdl.json is not a valid checkpoint record"):
        ckpt.restore(tmp_path)


def test_keeps_last_k_and_the_best(tmp_path):
    ts = _state()
    losses = {1: 0.9, 2: 0.2, 3: 0.5, 4: None, 5: 0.4, 6: 0.6}
    for t, loss in losses.items():
        metric = None if loss is None else {"name": "test_loss", "value": loss, "mode": "min"}
        ckpt.save(tmp_path, ts._replace(step=jnp.asarray(t, jnp.int32)), {"metric": metric}, keep=3)
    assert ckpt.steps(tmp_path) == [2, 4, 5, 6]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]
    # 'max' mode keeps the highest
    for t in (7, 8):
        ckpt.save(tmp_path, ts._replace(step=jnp.asarray(t, jnp.int32)),
                  {"metric": {"name": "test_accuracy", "value": 1.0 if t == 7 else 0.5, "mode": "max"}},
                  keep=None if t == 7 else 1)
    assert ckpt.steps(tmp_path) == [7, 8]


def test_save_is_atomic_and_idempotent(tmp_path):
    ts = _state()
    first = ckpt.save(tmp_path, ts, {"a": 1})
    again = ckpt.save(tmp_path, ts, {"a": 2})  # complete already: left alone
    assert first == again and json.loads(open(os.path.join(first, ckpt.RECORD)).read())["a"] == 1
    ckpt.save(tmp_path, ts, {"a": 3}, replace=True)
    assert json.loads(open(os.path.join(first, ckpt.RECORD)).read())["a"] == 3
    assert sorted(os.listdir(tmp_path)) == ["0"]


WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sharded_worker.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("devices", [(8, 1), (1, 8)])
def test_restore_places_leaves_with_the_target_sharding(tmp_path, devices):
    """A TrainState replicated with NamedSharding(mesh, P()) over 8 devices, saved and restored
    on 1 device (and back): each leaf comes back with the target's sharding and the saved bits.
    Subprocesses, since the device count is fixed when jax starts."""
    for mode, n in zip(("save", "restore"), devices):
        env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": ROOT,
               "XLA_FLAGS": devices_xla_flags(n)}
        r = subprocess.run([sys.executable, WORKER, str(tmp_path), mode], env=env, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
    assert f"restored on {devices[1]} devices from {devices[0]}" in r.stdout
