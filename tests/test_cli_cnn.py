import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest
from absl import app

from jdl import cli, param_count

JDL = [sys.executable, "-m", "jdl.cli"]


def run(*args):
    return subprocess.run([*JDL, *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("name", cli.CNN_MODELS)
def test_every_cnn_model_builds_for_its_data(name):
    shape = (40, 1) if name == "cnn1d" else (8, 8, 1)
    model = cli.build_model(name, 10, [128], "relu", input_shape=shape)
    x = jax.ShapeDtypeStruct((2, *shape), jnp.float32)
    params, state = jax.eval_shape(model.init, jax.random.key(0), x)
    y = jax.eval_shape(lambda p, s: model.apply(p, s, jnp.zeros(x.shape))[0], params, state)
    assert y.shape == (2, 10) and param_count(params) > 0


def test_resnet_and_plain_differ_by_the_shortcut_projections():
    count = lambda name: param_count(jax.eval_shape(cli.build_model(name, 10, [], "relu", input_shape=(8, 8, 1)).init,
                                                    jax.random.key(0), jax.ShapeDtypeStruct((1, 8, 8, 1), jnp.float32))[0])
    # two 1x1 projections (16->32, 32->64) with their BatchNorms
    assert count("resnet20") - count("plain20") == 16 * 32 + 2 * 32 + 32 * 64 + 2 * 64


def test_cnn_model_on_wrong_data_says_why():
    with pytest.raises(app.UsageError, match=r"--model=lenet5 needs images \(H, W, C\); the data set's examples are \(2,\)"):
        cli.build_model("lenet5", 2, [], "relu", input_shape=(2,))
    with pytest.raises(app.UsageError, match=r"--model=cnn1d needs sequences"):
        cli.build_model("cnn1d", 10, [], "relu", input_shape=(8, 8, 1))
    with pytest.raises(app.UsageError, match="--dropout applies to --model=mlp only"):
        cli.build_model("vgg", 10, [], "relu", dropout=0.5, input_shape=(8, 8, 1))


def test_jdl_train_lenet5_on_digits(tmp_path):
    r = run("train", "--model=lenet5", "--epochs=2", "--progress=false", f"--workdir={tmp_path}",
            "--checkpoint_every=0")
    assert r.returncode == 0, r.stderr
    assert "lenet5 on digits: validation accuracy" in r.stdout and "test accuracy" in r.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["config"]["model"] == "lenet5"
    last = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["validation_accuracy"] > 0.5  # 2 epochs of Adam; chance is 0.1
