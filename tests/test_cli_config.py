"""`jdl train`'s flags become one frozen `TrainConfig`: its fields mirror the flags, bad
combinations are usage errors, and a run splits validation from train and tests once."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
from absl import app

from jdl import cli
from tests.helpers import devices_xla_flags

JDL = [sys.executable, "-m", "jdl.cli"]


def config_of(*args):
    cli.FLAGS(["jdl", *args])
    try:
        return cli.TrainConfig.from_flags(cli.FLAGS)
    finally:
        cli.FLAGS.unparse_flags()


def test_config_from_flags_has_the_flag_values():
    config = config_of("--hidden=64,32", "--validation_fraction=0.2", "--accumulate_steps=2", "--test_every_epoch",
                       "--optimizer=sgd", "--devices=1", "--batch_size=16")
    assert config.hidden == (64, 32) and config.validation_fraction == 0.2 and config.accumulate_steps == 2
    assert config.test_every_epoch and config.devices == 1 and config.batch_size == 16
    assert config.learning_rate is None and config.resolved_learning_rate == 0.1  # sgd's default
    assert config.coordinator is None and config.early_stopping_patience is None
    assert config.record()["learning_rate"] == 0.1 and config.record()["hidden"] == [64, 32]


def test_every_field_is_a_flag_with_the_same_default():
    for field in dataclasses.fields(cli.TrainConfig):
        default = cli.FLAGS[field.name].default
        expected = (128,) if field.name == "hidden" else default
        assert field.default == expected, field.name
    assert config_of() == cli.TrainConfig()


def test_config_is_frozen():
    config = config_of()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 3


@pytest.mark.parametrize("args, message", [
    (["--early_stopping_patience=2", "--validation_fraction=0"],
     "--early_stopping_patience uses the validation loss, but --validation_fraction=0"),
    (["--coordinator=localhost:1234"], "missing --num_processes, --process_id"),
    (["--num_processes=2", "--process_id=0"], "missing --coordinator"),
    (["--hidden=8,x"], "--hidden='8,x': expected comma-separated positive ints"),
    (["--hidden=0"], "sizes must be positive"),
    (["--batch_size=10", "--accumulate_steps=3"], "--accumulate_steps=3 must divide --batch_size=10"),
])
def test_bad_combinations_are_usage_errors(args, message):
    with pytest.raises(app.UsageError, match=message):
        config_of(*args)


def test_train_validates_every_epoch_and_tests_once(tmp_path):
    r = subprocess.run([*JDL, "train", "--epochs=1", "--validation_fraction=0.2", "--accumulate_steps=2",
                        "--progress=false", "--checkpoint_every=0", f"--workdir={tmp_path}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 1 and {"validation_loss", "validation_accuracy"} <= records[0].keys()
    assert not [k for k in records[0] if k.startswith("test_")]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["config"]["accumulate_steps"] == 2 and summary["config"]["validation_fraction"] == 0.2
    test = summary["test"]
    assert f"test accuracy {test['accuracy']:.4f}, test loss {test['loss']:.4f}" in r.stdout
    assert f"validation accuracy {records[0]['validation_accuracy']:.4f}" in r.stdout
    assert f"results in {tmp_path}" in r.stdout


def test_test_every_epoch_and_no_validation_split(tmp_path):
    """In-process: --validation_fraction=0 trains on the whole training set with no
    validation_* records; --test_every_epoch labels per-epoch test numbers."""
    config = config_of("--dataset=moons", "--hidden=8", "--epochs=2", "--progress=false", "--validation_fraction=0",
                       "--test_every_epoch", "--checkpoint_every=0", f"--workdir={tmp_path}")
    result, _ = cli.train_command(config)
    assert [sorted(k for k in rec if k.split("_")[0] in ("test", "validation")) for rec in result.history] == \
        [["test_accuracy", "test_loss"]] * 2
    assert result.test == json.loads((tmp_path / "summary.json").read_text())["test"]


def test_early_stopping_without_validation_is_refused_on_the_command_line():
    r = subprocess.run([*JDL, "train", "--early_stopping_patience=2", "--validation_fraction=0"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "--early_stopping_patience uses the validation loss" in r.stderr


def test_two_devices_train_as_one(tmp_path):
    """--devices: the default data mesh over 2 forced CPU devices writes the metrics that
    --devices=1 (no mesh, the single-device path) writes; too many devices is a usage error."""
    import os

    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": devices_xla_flags(2)}
    common = ["train", "--dataset=moons", "--hidden=8", "--epochs=2", "--progress=false", "--checkpoint_every=0"]
    metrics = []
    for name, devices in (("two", []), ("one", ["--devices=1"])):
        r = subprocess.run([*JDL, *common, *devices, f"--workdir={tmp_path / name}"], capture_output=True, text=True,
                           timeout=300, env=env)
        assert r.returncode == 0, r.stderr
        metrics.append([json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()])
    for two, one in zip(*metrics):
        assert two.keys() == one.keys()
        np.testing.assert_allclose([two[k] for k in two], [one[k] for k in two], rtol=1e-5)
    r = subprocess.run([*JDL, *common, "--devices=3"], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode != 0 and "--devices=3: data_mesh: asked for 3 devices but only 2 exist" in r.stderr
