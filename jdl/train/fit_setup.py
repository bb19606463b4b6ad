"""What ``fit`` settles before its first step: the data checked, the early-stopping rule
checked against the splits, where batches and the train state go (one device or a mesh), the
data order a resume must match, and the writers of the workdir."""

from __future__ import annotations

import os
from typing import Any, Callable, NamedTuple

import jax
import numpy as np

from jdl.core import Module, output_struct
from jdl.data.batching import num_batches
from jdl.data.validate import check_examples, check_labels
from jdl.train import stopping as es_lib
from jdl.train import writers as writers_lib
from jdl.train import checkpoint as ckpt
from jdl.train.state import TrainState, init_train_state


class Data(NamedTuple):
    """The checked splits (validation and test may be ``None``) and the batch size in use."""

    train: tuple
    validation: tuple | None
    test: tuple | None
    batch_size: int


def check_data(train, validation, test, *, epochs: int, batch_size: int, accumulate_steps: int,
               checkpoint_every: int | None, keep: int, workdir: Any) -> Data:
    """Check the splits (finite features, one example shape, integer labels; ``jdl.data.validate``)
    and the loop's numbers; the batch size is capped at the training set's size."""
    x, y = check_examples("fit: train_data", train)
    splits = {}
    for name, split in (("validation_data", validation), ("test_data", test)):
        splits[name] = check_examples(f"fit: {name}", split) if split is not None else None
        if splits[name] is not None and splits[name][0].shape[1:] != x.shape[1:]:
            raise ValueError(f"fit: {name} examples have shape {splits[name][0].shape[1:]} but "
                             f"train_data's have {x.shape[1:]}")
    if epochs < 0 or batch_size < 1:
        raise ValueError(f"fit: epochs must be >= 0 and batch_size >= 1, got {epochs}, {batch_size}")
    if checkpoint_every is not None and (workdir is None or checkpoint_every < 1 or keep < 1):
        raise ValueError(f"fit: checkpoint_every={checkpoint_every} needs a workdir, and it and "
                         f"keep={keep} must be >= 1")
    batch_size = min(batch_size, len(x))
    if accumulate_steps < 1 or batch_size % accumulate_steps:
        raise ValueError(f"fit: accumulate_steps={accumulate_steps} must divide batch_size={batch_size} "
                         "(the batch is cut into that many microbatches)")
    return Data((x, y), splits["validation_data"], splits["test_data"], batch_size)


def check_stopping(metric: str, patience: int | None, validation: Any) -> es_lib.EarlyStopping:
    """The early-stopping rule, refusing the test set (decisions use validation only) and a
    validation metric without validation data."""
    if metric.startswith("test_"):
        raise ValueError(f"fit: early_stopping_metric={metric!r}: decisions (early stopping, the best "
                         "checkpoint) use the validation split, never the test set; use 'validation_loss' "
                         "or 'validation_accuracy' and pass validation_data")
    if patience is not None and metric.startswith("validation_") and validation is None:
        raise ValueError(f"fit: early stopping on {metric!r} needs validation_data, e.g. "
                         "jdl.data.load(name, 'validation') or jdl.data.split(x, y, 0.1)")
    return es_lib.early_stopping(metric, patience)


def init_state(model: Module, optimizer: Any, data: Data, seed: int, restore: Any = None) -> TrainState:
    """The run's first ``TrainState`` (``init_train_state`` on a batch's shape), its targets
    checked against the model's output; with ``restore``, params and state from that checkpoint
    (checked path by path), the optimizer fresh."""
    x = jax.ShapeDtypeStruct((data.batch_size, *data.train[0].shape[1:]), data.train[0].dtype)
    ts = init_train_state(model, optimizer, x, seed)
    check_targets(model, ts, x, data)
    if restore is not None:
        loaded = ckpt.restore(restore, ts, params_only=True).train_state
        ts = ts._replace(params=loaded.params, state=loaded.state)
    return ts


def check_targets(model: Module, ts: TrainState, x: jax.ShapeDtypeStruct, data: Data) -> None:
    """Integer targets with one fewer axis than the model's output are class labels: their
    per-example shape must match and each must lie in 0..K−1 (K = the output's last axis)."""
    out = output_struct(model, ts.params, ts.state, x)
    for name, split in (("train_data", data.train), ("validation_data", data.validation), ("test_data", data.test)):
        y = None if split is None else split[1]
        if y is None or not (np.issubdtype(y.dtype, np.integer) and out.ndim == y.ndim + 1):
            continue
        if tuple(y.shape[1:]) != tuple(out.shape[1:-1]):
            raise ValueError(f"fit: {name} y: labels have shape {y.shape[1:]} per example but the model "
                             f"outputs {out.shape[1:]} (expected labels of shape {out.shape[1:-1]})")
        check_labels(f"fit: {name} y", y, out.shape[-1])


def data_order(data: Data, seed: int) -> dict:
    """What fixes the order of the batches; a resume must find the same (``resume.check_compatible``)."""
    n = len(data.train[0])
    return {"steps_per_epoch": num_batches(n, data.batch_size), "batch_size": data.batch_size,
            "n_train": n, "seed": seed}


class Placement(NamedTuple):
    """Where things go: ``state(ts)`` places the train state, ``put(batch)`` a training batch
    given whole (this process's rows are cut from it), ``eval_put`` an evaluation batch;
    ``primary`` is whether this process writes files."""

    state: Callable[[Any], Any]
    put: Callable[[Any], Any] | None
    eval_put: Callable[[Any], Any] | None
    eval_batch_size: int
    primary: bool


def placement(mesh: Any, batch_size: int, eval_batch_size: int, fsdp: bool = False) -> Placement:
    """One device (``mesh=None``: JAX's default placement) or data-parallel over ``mesh``'s
    ``data`` axis: the train state replicated (``fsdp``: params and optimizer state sharded,
    ``jdl.distributed.shard_params``), each batch's rows sharded; the evaluation batch rounded
    up to a multiple of the device count."""
    if mesh is None:
        if fsdp:
            raise ValueError("fit: fsdp=True shards params over a mesh; pass mesh=jdl.distributed.data_mesh()")
        return Placement(lambda ts: ts, None, None, eval_batch_size, True)
    from jdl import distributed

    distributed.check_batch_size(mesh, batch_size)
    n = mesh.devices.size
    eval_batch_size = -(-eval_batch_size // n) * n

    def put_rows(size: int) -> Callable[[Any], Any]:
        rows = distributed.local_rows(size, mesh)
        return lambda batch: distributed.shard_batch(mesh, jax.tree.map(lambda a: a[rows], batch))

    def place_state(ts: TrainState) -> TrainState:
        if not fsdp:
            return distributed.replicate(mesh, ts)
        params, opt_state = distributed.shard_params(mesh, (ts.params, ts.opt_state))
        return TrainState(params, *distributed.replicate(mesh, (ts.state,)), opt_state,
                          *distributed.replicate(mesh, (ts.step, ts.key)))

    return Placement(place_state, put_rows(batch_size), put_rows(eval_batch_size), eval_batch_size,
                     jax.process_index() == 0)


class Writers(NamedTuple):
    """The epoch-end writers of a workdir and the function that closes them."""

    writers: list
    close: Callable[[], None]


def open_writers(workdir: Any, history: list, config: dict, commit: str | None, step: int,
                 tensorboard: bool) -> Writers:
    """metrics.jsonl (rewritten with a resumed run's history) and TensorBoard; none without a
    workdir (or on processes other than 0)."""
    if workdir is None:
        return Writers([], lambda: None)
    os.makedirs(workdir, exist_ok=True)
    out = [writers_lib.jsonl_writer(os.path.join(workdir, "metrics.jsonl"), history)]
    board = writers_lib.tensorboard_writer(os.path.join(workdir, "tb"), config, commit, step) if tensorboard else None
    if board is None:
        return Writers(out, lambda: None)
    return Writers([*out, board[0]], board[1])
