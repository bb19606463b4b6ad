"""`jdl train --model=gpt --dataset=pydoc_text`: a character GPT from the command line (its shape
from --hidden, --heads and --seq_len), and the flag combinations it refuses."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from absl import app

from jdl.cli.builders import build_model
from jdl.cli.config import TrainConfig
from jdl.cli.train import run_fit
from jdl.kernels import native

JDL = [sys.executable, "-m", "jdl.cli"]


def test_train_gpt_on_pydoc_text_reports_bits_per_character(tmp_path):
    # 2 blocks of width 16, 2 heads, context 128: 45 steps of one epoch; native attention where it builds
    attention = "native" if native.available() else "plain"
    r = subprocess.run([*JDL, "train", "--model=gpt", "--dataset=pydoc_text", "--seq_len=128", "--hidden=16,16",
                        "--heads=2", "--batch_size=64", "--epochs=1", "--learning_rate=0.01", "--progress=false",
                        "--checkpoint_every=0", f"--attention={attention}", f"--workdir={tmp_path}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    test_loss = summary["test"]["loss"]
    assert f"test bits per character {test_loss / math.log(2):.4f}" in r.stdout
    assert test_loss / math.log(2) < math.log2(104) - 1  # a bit below the uniform's log₂ V after 45 steps
    assert summary["config"]["heads"] == 2 and summary["config"]["hidden"] == [16, 16]
    assert summary["config"]["attention"] == attention


def test_gpt_shape_comes_from_hidden_heads_and_seq_len():
    import jax
    import jax.numpy as jnp

    model = build_model("gpt", 104, (24, 24, 24), "relu", input_shape=(40,), heads=3)
    params, _ = model.init(jax.random.key(0), jax.ShapeDtypeStruct((1, 40), jnp.int32))
    assert params["wpe"]["w"].shape == (40, 24) and params["wte"]["w"].shape == (104, 24)
    assert sorted(params["blocks"]) == ["0_block", "1_block", "2_block"]
    ids = jnp.asarray(np.random.default_rng(0).integers(0, 104, (2, 40)))
    logits = model.apply(params, {}, ids)[0]
    assert logits.shape == (2, 40, 104)
    # --attention reaches GPTConfig (which refuses dropout on anything but the plain weights),
    # and the online-softmax form gives the same logits
    with pytest.raises(ValueError, match="drops attention weights, which needs attention='plain', got 'blockwise'"):
        build_model("gpt", 104, (24,), "relu", dropout=0.1, input_shape=(40,), heads=3, attention="blockwise")
    blockwise = build_model("gpt", 104, (24, 24, 24), "relu", input_shape=(40,), heads=3, attention="blockwise")
    np.testing.assert_allclose(blockwise.apply(params, {}, ids)[0], logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("overrides, message", [
    ({"hidden": (30,), "heads": 4}, r"d_model --hidden=30 is not divisible by --heads=4"),
    ({"hidden": (16, 8)}, r"--model=gpt: --hidden=16,8 must repeat one size"),
    ({"norm": "layer"}, "--norm applies to --model=mlp and the CNNs, not --model=gpt"),
    ({"dataset": "digits"}, "--model=gpt does not read --dataset=digits"),
])
def test_gpt_flag_combinations_are_usage_errors(overrides, message):
    config = {"model": "gpt", "dataset": "pydoc_text", "hidden": (16,), **overrides}
    with pytest.raises(app.UsageError, match=message):
        run_fit(TrainConfig(**config, epochs=0, progress=False))


@pytest.mark.parametrize("model, setting, wanted", [("gpt", "auto", True), ("mlp", "auto", False),
                                                     ("gpt", "off", False), ("lstm_lm", "on", True)])
def test_keep_host_memory_is_on_for_the_gpt_unless_told(model, setting, wanted):
    from jdl.cli.train import wants_kept_host_memory

    dataset = "digits" if model == "mlp" else "pydoc_text"
    assert wants_kept_host_memory(TrainConfig(model=model, dataset=dataset, keep_host_memory=setting)) is wanted
