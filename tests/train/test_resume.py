"""Exact resume in one process: a run interrupted (a callback raising, a crash right after a
mid-epoch checkpoint, early stopping on the way) and resumed ends bit-identical to a run never
interrupted: same params, optimizer state, history and metrics.jsonl."""

import json
import os
import shutil
import signal

import jax
import numpy as np
import pytest

import jdl
from jdl.losses import softmax_cross_entropy
from jdl.train import checkpoint as ckpt
from jdl.train import fit
from tests.helpers import draw_normal

TRAIN = tuple(a[:200] for a in jdl.data.load("moons", "train"))  # 8 steps of 25 an epoch
VAL = jdl.data.load("moons", "validation")


def _augment(key, x):  # uses the step's key: a resume that got the keys wrong would differ
    return x + 0.05 * draw_normal(key, x.shape, x.dtype)


def _fit(workdir, epochs=4, loss=softmax_cross_entropy, **kw):
    return fit(jdl.models.mlp([16, 2]), loss, jdl.optim.sgd(lambda t: 0.3 / (1 + 0.01 * t)),
               TRAIN, VAL, epochs=epochs, batch_size=25, seed=3, workdir=workdir, progress=False,
               augment=_augment, checkpoint_every=5, tensorboard=False, **kw)


def _same_run(a, b, dir_a, dir_b):
    assert a.history == b.history
    jax.tree.map(np.testing.assert_array_equal, a.train_state.params, b.train_state.params)
    jax.tree.map(np.testing.assert_array_equal, a.train_state.opt_state, b.train_state.opt_state)
    assert (dir_a / "metrics.jsonl").read_text() == (dir_b / "metrics.jsonl").read_text()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("reference")
    return _fit(workdir, keep=100), workdir


def test_checkpoints_where_expected(reference):
    result, workdir = reference
    # every 5 steps, plus each epoch end that improved validation_loss, plus the end (32)
    improved = [8 * (i + 1) for i, h in enumerate(result.history)
                if h["validation_loss"] == min(r["validation_loss"] for r in result.history[:i + 1])]
    expected = sorted(set(range(5, 33, 5)) | set(improved) | {32})
    assert ckpt.steps(workdir / "checkpoints") == expected
    last = ckpt.restore(workdir)
    assert last.meta["position"]["epoch"] == 4 and last.meta["history"] == result.history
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["checkpoint"] == str(workdir / "checkpoints" / "32")


def test_resume_after_a_failing_callback_is_exact(reference, tmp_path):
    def boom(epoch, record, ts):
        if epoch == 2:
            raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        _fit(tmp_path, callbacks=[boom])
    assert ckpt.restore(tmp_path).meta["position"] == {**ckpt.restore(tmp_path).meta["position"], "epoch": 2, "batch": 0}
    _same_run(_fit(tmp_path), reference[0], tmp_path, reference[1])


def test_failing_evaluation_keeps_the_progress(reference, tmp_path):
    """The evaluation (the only caller of the loss with reduction='none') raises at the end of
    epoch 1: the checkpoint written then holds the epoch's steps and sums without its record;
    a resume evaluates it and ends exact."""

    def broken_eval_loss(out, y, reduction="mean"):
        if reduction == "none":
            raise RuntimeError("evaluation failed")
        return softmax_cross_entropy(out, y, reduction)

    with pytest.raises(RuntimeError, match="evaluation failed"):
        _fit(tmp_path, loss=broken_eval_loss)
    position = ckpt.restore(tmp_path).meta["position"]
    assert (position["epoch"], position["batch"]) == (0, 8)  # epoch 1's steps done, its record not
    _same_run(_fit(tmp_path), reference[0], tmp_path, reference[1])


def test_sigint_saves_after_the_current_step_then_interrupts(reference, tmp_path):
    def ctrl_c(epoch, record, ts):
        if epoch == 1:
            os.kill(os.getpid(), signal.SIGINT)  # arrives during the loop; fit finishes step 9 first

    # Python's own Ctrl-C handler for this test: a test runner's worker may ignore SIGINT
    # (pytest-xdist's do, leaving Ctrl-C to the controller), and fit re-delivers the signal
    # to whatever handler it found
    runner_handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            _fit(tmp_path, callbacks=[ctrl_c])
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored
    finally:
        signal.signal(signal.SIGINT, runner_handler)
    assert max(ckpt.steps(tmp_path / "checkpoints")) == 9  # 9: neither a multiple of 5 nor an epoch end
    _same_run(_fit(tmp_path), reference[0], tmp_path, reference[1])


@pytest.mark.parametrize("step", [13, 16])  # mid-epoch (epoch 1, batch 5 of 8) and an epoch end
def test_resume_from_any_checkpoint_is_exact(reference, tmp_path, step):
    """A crash right after checkpoint `step`: only the checkpoints up to it exist."""
    result, workdir = reference
    if step not in ckpt.steps(workdir / "checkpoints"):  # 13 is not a multiple of 5: use 15
        step = 15
    shutil.copytree(workdir / "checkpoints", tmp_path / "checkpoints")
    for s in ckpt.steps(tmp_path / "checkpoints"):
        if s > step:
            shutil.rmtree(tmp_path / "checkpoints" / str(s))
    _same_run(_fit(tmp_path, keep=100), result, tmp_path, workdir)


def test_resume_past_a_corrupt_last_checkpoint_is_exact(reference, tmp_path, caplog):
    """The newest checkpoint (32, the end) truncated: the resume names it, continues from the
    one before (30), rewrites 32 and ends as the reference did."""
    result, workdir = reference
    shutil.copytree(workdir / "checkpoints", tmp_path / "checkpoints")
    last = tmp_path / "checkpoints" / "32"
    data = [os.path.join(root, n) for root, _, names in os.walk(last / "state")
            if os.path.basename(root) == "d" for n in names]  # orbax's array data (OCDBT)
    for name in data:
        with open(name, "r+b") as f:
            f.truncate(os.path.getsize(name) // 2)
    with caplog.at_level("WARNING"):
        _same_run(_fit(tmp_path, keep=100), result, tmp_path, workdir)
    assert f"{last / 'state'} could not be read" in caplog.text
    assert ckpt.restore(last).meta["position"]["epoch"] == 4  # rewritten whole


def test_resume_refuses_other_batch_size(reference, tmp_path):
    shutil.copytree(reference[1] / "checkpoints", tmp_path / "checkpoints")
    with pytest.raises(ValueError, match="cannot resume exactly .* batch_size: checkpoint 25, now 20"):
        fit(jdl.models.mlp([16, 2]), softmax_cross_entropy, jdl.optim.sgd(lambda t: 0.3 / (1 + 0.01 * t)),
            TRAIN, VAL, epochs=4, batch_size=20, seed=3, workdir=tmp_path, progress=False, checkpoint_every=5)


def test_restore_for_fine_tuning_loads_params_only(reference, tmp_path):
    result, workdir = reference
    tuned = fit(jdl.models.mlp([16, 2]), softmax_cross_entropy, jdl.optim.sgd(0.0), TRAIN, VAL, epochs=1,
                batch_size=25, restore=workdir, progress=False)
    # learning rate 0: the params are the restored ones, and the validation metrics those of the run's end
    jax.tree.map(np.testing.assert_array_equal, tuned.train_state.params, result.train_state.params)
    assert tuned.history[0]["validation_loss"] == result.history[-1]["validation_loss"]
    assert int(tuned.train_state.step) == 8  # a fresh run: its own steps only
    with pytest.raises(ckpt.CheckpointMismatch, match="params/1_dense/w: checkpoint"):
        fit(jdl.models.mlp([8, 2]), softmax_cross_entropy, jdl.optim.sgd(0.1), TRAIN, epochs=1,
            batch_size=25, restore=workdir, progress=False)


def test_early_stopping_resumes_exactly(tmp_path):
    """The early-stopping run of test_fit (sgd 2.0 on moons) interrupted at epoch 6 and resumed:
    same best epoch, same returned (best) params, same history."""
    data, val = jdl.data.load("moons", "train"), jdl.data.load("moons", "validation")

    def run(workdir, callbacks=()):
        return fit(jdl.models.mlp([16, 2]), softmax_cross_entropy, jdl.optim.sgd(2.0), data, val,
                   epochs=40, batch_size=100, early_stopping_patience=2, workdir=workdir, progress=False,
                   checkpoint_every=1000, keep=1, callbacks=callbacks, tensorboard=False)

    whole = run(tmp_path / "whole")

    def interrupt(epoch, record, ts):
        if epoch == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", [interrupt])
    resumed = run(tmp_path / "cut")
    assert resumed.history == whole.history and len(whole.history) < 40
    jax.tree.map(np.testing.assert_array_equal, resumed.train_state.params, whole.train_state.params)
    best = json.loads((tmp_path / "whole" / "summary.json").read_text())["best_epoch"]
    assert json.loads((tmp_path / "cut" / "summary.json").read_text())["best_epoch"] == best
    # keep=1: the last checkpoint and the best one are all that is left
    per_epoch = len(data[0]) // 100  # 7: the 720 of 'train' (the published 800 less validation)
    assert ckpt.steps(tmp_path / "cut" / "checkpoints") == sorted({best * per_epoch, len(whole.history) * per_epoch})
    # a finished, early-stopped run resumed again trains no further
    again = run(tmp_path / "cut")
    assert again.history == whole.history
    assert os.path.exists(tmp_path / "cut" / "curves.png")
