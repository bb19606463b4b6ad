import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl.losses import softmax_cross_entropy
from jdl.train import evaluate, fit, init_train_state, make_eval_step, make_step, supervised
from tests.helpers import draw_normal


def test_fit_learns_xor_and_writes_files(tmp_path):
    model = jdl.models.mlp([32, 2], activation=jnp.tanh)
    result = fit(model, softmax_cross_entropy, jdl.optim.sgd(0.5), jdl.data.load("xor", "train"),
                 jdl.data.load("xor", "validation"), test_data=jdl.data.load("xor", "test"), epochs=30,
                 batch_size=16, workdir=tmp_path, config={"model": "mlp"}, progress=False)
    assert result.history[-1]["validation_accuracy"] >= 0.93 and result.test["accuracy"] >= 0.93
    assert not any(k.startswith("test_") for k in result.history[-1])  # the test set is touched once
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 30 and json.loads(lines[-1]) == result.history[-1]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["final"]["validation_accuracy"] == result.history[-1]["validation_accuracy"]
    assert summary["test"] == result.test
    assert summary["config"] == {"model": "mlp"} and summary["wall_time_s"] > 0
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert int(result.train_state.step) == 30 * (720 // 16)  # 720: the published 800 less validation


def test_fit_same_seed_same_bits():
    data = jdl.data.load("moons", "train")
    runs = [fit(jdl.models.mlp([8, 2]), softmax_cross_entropy, jdl.optim.sgd(0.1), data, epochs=2,
                batch_size=50, seed=3, progress=False) for _ in range(2)]
    assert runs[0].history == runs[1].history
    jax.tree.map(np.testing.assert_array_equal, runs[0].train_state.params, runs[1].train_state.params)


def test_step_is_one_sgd_update(key):
    model = jdl.models.mlp([4, 3])
    x = draw_normal(key, (8, 5))
    y = jnp.arange(8) % 3
    ts = init_train_state(model, jdl.optim.sgd(0.1), x, seed=0)
    params0 = jax.tree.map(jnp.copy, ts.params)
    grads = jax.grad(lambda p: softmax_cross_entropy(model.apply(p, {}, x)[0], y))(params0)
    ts, metrics = make_step(supervised(model, softmax_cross_entropy), jdl.optim.sgd(0.1))(ts, (x, y))
    jax.tree.map(lambda p, p0, g: np.testing.assert_allclose(p, p0 - 0.1 * g, rtol=1e-5, atol=1e-6),
                 ts.params, params0, grads)
    assert int(ts.step) == 1 and set(metrics) == {"loss", "accuracy"}


def test_evaluate_pads_last_batch_exactly(key):
    model = jdl.models.mlp([4, 3])
    x = np.asarray(draw_normal(key, (10, 5)))
    y = np.arange(10, dtype=np.int32) % 3
    params, state = model.init(key, x)
    logits = model.apply(params, state, x)[0]
    expect = float(softmax_cross_entropy(logits, y))
    traces = []

    def counted_loss(out, y, reduction="mean"):
        traces.append(out.shape)  # runs once per trace, not per call
        return softmax_cross_entropy(out, y, reduction=reduction)

    step = make_eval_step(model, counted_loss)
    got = evaluate(step, params, state, x, y, batch_size=4)
    assert got["loss"] == pytest.approx(expect, rel=1e-5)
    assert got["accuracy"] == pytest.approx(float(jdl.metrics.accuracy(logits, y)))
    assert traces == [(4, 3)]  # three batches, one trace: the padded last batch did not recompile


def test_fit_rejects_bad_data():
    with pytest.raises(ValueError, match="train_data has 3 inputs but 2 targets"):
        fit(jdl.models.mlp([2]), softmax_cross_entropy, jdl.optim.sgd(0.1), (np.zeros((3, 2)), np.zeros(2)))


def test_early_stopping_restores_best_params(tmp_path):
    """With a learning rate so large that the validation loss stops improving, fit stops after `patience` epochs without improvement and returns the params of
    the best epoch."""
    data, val = jdl.data.load("moons", "train"), jdl.data.load("moons", "validation")
    seen = []
    result = fit(jdl.models.mlp([16, 2]), softmax_cross_entropy, jdl.optim.sgd(2.0), data, val,
                 epochs=40, batch_size=100, early_stopping_patience=2, workdir=tmp_path, progress=False,
                 callbacks=[lambda e, r, ts: seen.append(jax.tree.map(np.array, ts.params))])
    losses = [h["validation_loss"] for h in result.history]
    best = int(np.argmin(losses))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["best_epoch"] == best + 1
    assert len(losses) < 40 and len(losses) - 1 - best == 2
    jax.tree.map(np.testing.assert_array_equal, result.train_state.params, seen[best])


def test_penalty_and_augment_enter_the_step(key):
    model = jdl.models.mlp([3])
    x = draw_normal(key, (4, 2))
    y = jnp.arange(4) % 3
    ts = init_train_state(model, jdl.optim.sgd(0.1), x)
    p0 = jax.tree.map(jnp.copy, ts.params)

    def penalty(p):
        return 0.5 * jnp.sum(p["1_dense"]["w"] ** 2)

    def augment(k, x):
        return -x

    def objective(p):
        return softmax_cross_entropy(model.apply(p, {}, -x)[0], y) + penalty(p)

    step = make_step(supervised(model, softmax_cross_entropy, augment=augment), jdl.optim.sgd(0.1), penalty=penalty)
    ts, metrics = step(ts, (x, y))
    grads = jax.grad(objective)(p0)
    jax.tree.map(lambda p, q, g: np.testing.assert_allclose(p, q - 0.1 * g, rtol=1e-5, atol=1e-6), ts.params, p0, grads)
    np.testing.assert_allclose(metrics["penalty"], penalty(p0), rtol=1e-6)


def test_eval_loss_fn_reports_the_plain_loss_while_training_on_a_smoothed_one():
    import functools

    train_data, test_data = jdl.data.load("moons", "train"), jdl.data.load("moons", "test")
    smoothed = functools.partial(softmax_cross_entropy, label_smoothing=0.2)
    model = jdl.models.mlp([8, 2])
    result = fit(model, smoothed, jdl.optim.sgd(0.1), train_data, test_data=test_data, epochs=2, batch_size=50,
                 progress=False, eval_loss_fn=softmax_cross_entropy)
    ts = result.train_state
    plain = evaluate(make_eval_step(model, softmax_cross_entropy), ts.params, ts.state, *test_data)
    smooth = evaluate(make_eval_step(model, smoothed), ts.params, ts.state, *test_data)
    assert result.test["loss"] == pytest.approx(plain["loss"], rel=1e-6)
    assert abs(plain["loss"] - smooth["loss"]) > 1e-3  # the two losses differ, so the test can fail
