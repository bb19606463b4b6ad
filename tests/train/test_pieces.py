"""The loop's pieces on their own: EarlyStopping's pure update (and its replay from a history),
the epoch iterator from a position, an epoch's record, and the writers."""

import json
import math

import jax.numpy as jnp
import numpy as np
import pytest

from jdl.train import early_stopping, stopping, writers
from jdl.train.loop import epoch_batches, replay, train_record


def test_early_stopping_tracks_the_best_and_stops_after_patience():
    es = early_stopping("validation_loss", patience=2)
    seen = []
    for epoch, loss in enumerate([0.9, 0.7, float("nan"), 0.72, 0.71], start=1):
        es, improved = stopping.update(es, epoch, {"validation_loss": loss})
        seen.append((improved, es.stop))
    assert seen == [(True, False), (True, False), (False, False), (False, True), (False, True)]
    assert (es.best_epoch, es.best_value) == (2, 0.7)  # a NaN never improves


def test_early_stopping_on_an_accuracy_maximizes_and_never_stops_without_patience():
    es = early_stopping("validation_accuracy")
    assert es.mode == "max"
    for epoch, acc in enumerate([0.5, 0.8, 0.6, 0.6, 0.6, 0.6], start=1):
        es, _ = stopping.update(es, epoch, {"validation_accuracy": acc})
    assert (es.best_epoch, es.stop) == (2, False)


def test_early_stopping_names_the_metrics_a_record_has():
    with pytest.raises(ValueError, match=r"metric 'validation_loss' is not among the epoch's metrics \['train_loss'\]"):
        stopping.update(early_stopping(patience=1), 1, {"train_loss": 1.0})
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        early_stopping("validation_loss", mode="lowest")


def test_replay_of_a_history_equals_the_updates_made_along_it():
    history = [{"epoch": e, "validation_loss": v} for e, v in enumerate([1.0, 0.5, 0.6, 0.55], start=1)]
    es = early_stopping(patience=2)
    for record in history:
        es, _ = stopping.update(es, record["epoch"], record)
    assert replay(early_stopping(patience=2), history) == es and es.stop


def test_epoch_batches_from_a_position_are_the_tail_of_the_epoch():
    x, y = np.arange(40, dtype=np.float32).reshape(20, 2), np.arange(20)
    whole = list(epoch_batches(x, y, 4, seed=3, epoch=2, start=0))
    tail = list(epoch_batches(x, y, 4, seed=3, epoch=2, start=3, put=lambda b: (b[0] + 0, b[1])))
    assert len(whole) == 5 and len(tail) == 2
    for (xa, ya), (xb, yb) in zip(whole[3:], tail):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert sorted(np.concatenate([b[1] for b in whole]).tolist()) == list(range(20))  # a permutation


def test_train_record_means_over_the_steps_not_skipped():
    sums = {"loss": jnp.float32(6.0), "accuracy": jnp.float32(1.5), "skipped": jnp.int32(1)}
    record = train_record(epoch=0, t=4, sums=sums, steps_per_epoch=4)
    assert record == {"epoch": 1, "step": 4, "train_loss": 2.0, "train_accuracy": 0.5, "train_skipped_steps": 1}
    assert math.isclose(train_record(1, 8, {"loss": jnp.float32(2.0)}, 4)["train_loss"], 0.5)


def test_writers_write_the_history_then_append(tmp_path):
    path = tmp_path / "metrics.jsonl"
    write = writers.jsonl_writer(path, [{"epoch": 1, "train_loss": 1.0}])
    write(2, {"epoch": 2, "train_loss": 0.5}, None)
    assert [json.loads(line)["epoch"] for line in path.read_text().splitlines()] == [1, 2]
    history = [{"epoch": 1, "validation_loss": 0.4}, {"epoch": 2, "validation_loss": 0.3}]
    summary = writers.write_summary(tmp_path / "summary.json", history, wall_time_s=1.5, steps=8, config={"a": 1},
                                    git_commit=None, checkpoint=None, best_epoch=2, test={"accuracy": 0.9})
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert summary["best"] == history[1] and summary["test"] == {"accuracy": 0.9} and summary["final"] == history[-1]
