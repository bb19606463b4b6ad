import json
import subprocess
import sys


JDL = [sys.executable, "-m", "jdl.cli"]


def run(*args):
    return subprocess.run([*JDL, *args], capture_output=True, text=True, timeout=300)


def test_train_with_every_regularizer(tmp_path):
    r = run("train", "--dataset=moons", "--optimizer=sgd", "--learning_rate=0.1", "--epochs=3",
            "--progress=false", f"--workdir={tmp_path}", "--hidden=16",
            "--norm=batch", "--dropout=0.2", "--l1=1e-4", "--l2=1e-3", "--augment", "--label_smoothing=0.1",
            "--early_stopping_patience=1", "--weight_decay=1e-4")
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["config"]["norm"] == "batch" and summary["config"]["dropout"] == 0.2
    assert "best_epoch" in summary  # early stopping kept the best epoch
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(rec["train_penalty"] > 0 for rec in records)  # the penalty entered the step
    assert summary["best"]["validation_accuracy"] > 0.75


def test_invalid_norm_lists_choices():
    r = run("train", "--norm=group")
    assert r.returncode != 0 and "value should be one of <none|batch|layer>" in r.stderr + r.stdout


def test_weight_decay_with_sgd_decays_weights_not_biases():
    import jax.numpy as jnp
    import numpy as np

    import jdl
    from jdl.cli import with_weight_decay

    params = {"0_dense": {"w": jnp.array([[1.0, -2.0]]), "b": jnp.array([3.0, 4.0])}}
    grads = jax_tree_full(params, 0.5)
    opt = with_weight_decay(jdl.optim.sgd(0.1), 0.2)
    updates, _ = opt.update(grads, opt.init(params), params)
    new = jdl.optim.apply_updates(params, updates)
    np.testing.assert_allclose(new["0_dense"]["w"], (1 - 0.1 * 0.2) * params["0_dense"]["w"] - 0.1 * 0.5, rtol=1e-6)
    np.testing.assert_allclose(new["0_dense"]["b"], params["0_dense"]["b"] - 0.1 * 0.5, rtol=1e-6)
    assert with_weight_decay(opt, 0.0) is opt


def jax_tree_full(tree, value):
    import jax

    return jax.tree.map(lambda a: a * 0 + value, tree)
