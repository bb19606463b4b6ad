"""TensorBoard events (when tensorboard is installed) and the git commit of a run."""

import json
import os
import subprocess

import pytest

import jdl
from jdl.losses import softmax_cross_entropy
from jdl.train import fit, runlog


def test_tensorboard_events_hold_the_history_and_config(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    data = tuple(a[:100] for a in jdl.data.load("xor", "train"))
    result = fit(jdl.models.mlp([4, 2]), softmax_cross_entropy, jdl.optim.sgd(0.1), data, data, epochs=2,
                 batch_size=20, workdir=tmp_path, config={"model": "mlp", "lr": 0.1}, progress=False)
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"tensors": 0, "scalars": 0})
    events.Reload()
    losses = [(e.step, e.value) for e in events.Scalars("train_loss")]
    assert losses == [(h["step"], pytest.approx(h["train_loss"], rel=1e-6)) for h in result.history]
    assert [e.value for e in events.Scalars("validation_accuracy")] == pytest.approx(
        [h["validation_accuracy"] for h in result.history], rel=1e-6)
    config = events.Tensors("config")[0].tensor_proto.string_val[0].decode()
    assert json.loads(config) == {"model": "mlp", "lr": 0.1}
    commit = events.Tensors("git_commit")[0].tensor_proto.string_val[0].decode()
    assert commit == str(json.loads((tmp_path / "summary.json").read_text())["git_commit"])


def test_git_commit(tmp_path):
    assert runlog.git_commit(tmp_path) is None  # not a repository
    run = dict(cwd=tmp_path, capture_output=True, check=True)
    subprocess.run(["git", "init", "-q"], **run)
    (tmp_path / "a.txt").write_text("1")
    subprocess.run(["git", "add", "a.txt"], **run)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"], **run)
    head = subprocess.run(["git", "rev-parse", "HEAD"], text=True, **run).stdout.strip()
    assert runlog.git_commit(tmp_path) == head
    (tmp_path / "a.txt").write_text("2")
    assert runlog.git_commit(tmp_path) == head + "+dirty"
    assert os.path.exists(tmp_path / ".git")
