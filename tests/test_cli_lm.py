"""`jdl train --model=lstm_lm --dataset=pydoc_text`: a character language model from the command
line, and the flag combinations it refuses."""

import json
import math
import subprocess
import sys

import pytest
from absl import app

from jdl.cli.config import TrainConfig
from jdl.cli.train import run_fit
from jdl.kernels import native

JDL = [sys.executable, "-m", "jdl.cli"]


def test_train_lstm_lm_on_pydoc_text_reports_bits_per_character(tmp_path):
    # long windows and a tiny model: 23 steps, one epoch; the native recurrence where it builds
    impl = "native" if native.available() else "fused"
    r = subprocess.run([*JDL, "train", "--model=lstm_lm", "--dataset=pydoc_text", "--seq_len=256", "--hidden=16",
                        "--embed=8", "--batch_size=64", "--epochs=1", "--learning_rate=0.01", "--progress=false",
                        "--checkpoint_every=0", f"--lstm_impl={impl}", f"--workdir={tmp_path}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    test_loss = summary["test"]["loss"]
    assert f"test bits per character {test_loss / math.log(2):.4f}" in r.stdout
    assert test_loss / math.log(2) < math.log2(104)  # below the uniform's log₂ V after 23 steps
    assert summary["config"]["embed"] == 8 and summary["config"]["seq_len"] == 256
    assert summary["config"]["lstm_impl"] == impl


@pytest.mark.parametrize("overrides, message", [
    ({"model": "lstm_lm", "dataset": "digits"}, "--model=lstm_lm does not read --dataset=digits"),
    ({"model": "mlp", "dataset": "pydoc_text"}, "--model=mlp does not read --dataset=pydoc_text"),
    ({"model": "gru_lm", "dataset": "pydoc_text", "hidden": (16, 8)}, r"--hidden=16,8 must repeat one size"),
    ({"model": "rnn_lm", "dataset": "pydoc_text", "norm": "layer"}, "--norm applies to --model=mlp and the CNNs"),
    ({"model": "gru_lm", "dataset": "pydoc_text", "lstm_impl": "native"}, "--lstm_impl=native is for --model=lstm_lm"),
    ({"model": "lstm_lm", "dataset": "pydoc_text", "attention": "native"}, "--attention=native is for --model=gpt"),
    ({"model": "gpt", "dataset": "pydoc_text", "attention": "jax", "dropout": 0.1},
     "--dropout=0.1 drops attention weights, which needs --attention=plain"),
])
def test_language_model_flag_combinations_are_usage_errors(overrides, message):
    with pytest.raises(app.UsageError, match=message):
        run_fit(TrainConfig(**overrides, epochs=0, progress=False))
