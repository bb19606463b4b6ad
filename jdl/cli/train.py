"""``jdl train``: train a model on a data set with ``jdl.train.fit``, everything from one
``TrainConfig``."""

from __future__ import annotations

import functools
import math
import os
import time

from absl import app

from jdl.cli.builders import build_model, build_optimizer, build_schedule, regularization_options, with_weight_decay
from jdl.cli.cache import compilation_cache_dir, use_compilation_cache
from jdl.cli.config import TrainConfig
from jdl.cli.data import load_splits
from jdl.cli.flags import GENERATIVE_MODELS, LM_MODELS


def start_processes(config: TrainConfig) -> None:
    """Join the multi-process run that ``--coordinator`` names (before anything touches JAX's
    devices); nothing for a single process."""
    if config.coordinator is None:
        return
    from jdl import distributed

    try:
        distributed.initialize(config.coordinator, config.num_processes, config.process_id)
    except ValueError as e:
        raise app.UsageError(f"--coordinator/--num_processes/--process_id: {e}") from None


def device_mesh(devices: int | None, batch_size: int):
    """The data mesh over the first ``devices`` devices (default: all of them), or None for
    one device, so that single-device runs take the unchanged single-device path."""
    import jax

    from jdl import distributed

    n = jax.device_count() if devices is None else devices
    if n == 1:
        return None
    try:
        mesh = distributed.data_mesh(n)
        distributed.check_batch_size(mesh, batch_size)
    except ValueError as e:  # the message names the sizes that would divide
        raise app.UsageError(f"--devices={n}: {e}; or --devices=1") from None
    return mesh


def fit_options(config: TrainConfig) -> dict:
    """``fit``'s keyword arguments that come straight from the config."""
    return {"epochs": config.epochs, "batch_size": config.batch_size, "seed": config.seed,
            "progress": config.progress, "early_stopping_patience": config.early_stopping_patience,
            "checkpoint_every": config.checkpoint_every or None, "keep": config.keep, "restore": config.restore,
            "on_nonfinite": None if config.on_nonfinite == "ignore" else config.on_nonfinite,
            "compute_dtype": None if config.compute_dtype == "float32" else config.compute_dtype,
            "accumulate_steps": config.accumulate_steps, "test_every_epoch": config.test_every_epoch}


def build_optimizer_for(config: TrainConfig, n_train: int):
    """The optimizer of the config, its schedule over epochs × steps per epoch on ``n_train``
    training examples, and weight decay."""
    from jdl.data.batching import num_batches

    steps_per_epoch = num_batches(n_train, min(config.batch_size, n_train))
    lr = build_schedule(config.schedule, config.resolved_learning_rate, config.epochs * steps_per_epoch,
                        config.decay_rate, config.decay_steps or steps_per_epoch, config.warmup_steps)
    optimizer = build_optimizer(config.optimizer, lr, config.momentum, config.nesterov, config.fused_optimizer)
    return with_weight_decay(optimizer, config.weight_decay)


def run_fit(config: TrainConfig):
    """Train as ``config`` says; returns ``fit``'s ``FitResult(train_state, history, test)``
    and the workdir its files are in."""
    if config.model in GENERATIVE_MODELS:  # vae, gan, ddpm: their own loop on jdl.train's pieces
        from jdl.cli.train_generative import run_generative
        return run_generative(config)
    import numpy as np

    from jdl import data, losses
    from jdl.train import fit

    if config.dataset not in data.names():
        raise app.UsageError(f"--dataset={config.dataset!r}: valid choices are {', '.join(data.names())}")
    text = config.dataset in data.SEQUENCE_LOADERS
    if text != (config.model in LM_MODELS):
        raise app.UsageError(f"--model={config.model} does not read --dataset={config.dataset}: the text sets "
                             f"({', '.join(data.SEQUENCE_LOADERS)}) go with the language models "
                             f"({', '.join(LM_MODELS)}), and only with them")
    train_data, validation_data, test_data = load_splits(config.dataset, config.data_dir, config.validation_fraction,
                                                         seq_len=config.seq_len if text else None,
                                                         train_size=config.train_size)
    n_classes = data.VOCABS[config.dataset]().size if text else int(np.max(train_data[1])) + 1
    model = build_model(config.model, n_classes, config.hidden, config.activation, config.norm, config.dropout,
                        input_shape=train_data[0].shape[1:], embed=config.embed, heads=config.heads,
                        lstm_impl=config.lstm_impl, attention=config.attention)
    optimizer = build_optimizer_for(config, len(train_data[0]))
    workdir = config.workdir or os.path.join(
        "runs", f"{config.model}-{config.dataset}-{time.strftime('%Y%m%d-%H%M%S')}")
    loss_fn = functools.partial(losses.softmax_cross_entropy, label_smoothing=config.label_smoothing)
    mesh = device_mesh(config.devices, config.batch_size)
    result = fit(model, loss_fn, optimizer, train_data, validation_data, test_data=test_data, workdir=workdir,
                 config=config.record(), eval_loss_fn=losses.softmax_cross_entropy, mesh=mesh,
                 fsdp=config.fsdp and mesh is not None, **fit_options(config),
                 **regularization_options(train_data[0].shape, config.batch_size, config.l1, config.l2,
                                          config.augment))
    return result, workdir


def report(config: TrainConfig, result, workdir: str, wall_time_s: float) -> str:
    """The line ``jdl train`` prints: the last epoch's validation accuracy, the test metrics
    (measured once, at the end), the wall time and where the results are."""
    if config.model in GENERATIVE_MODELS:
        from jdl.cli.train_generative import report as generative_report
        return generative_report(config, result, workdir, wall_time_s)
    nan = float("nan")
    last = result.history[-1] if result.history else {}
    test = result.test or {}
    validation = (f"validation accuracy {last['validation_accuracy']:.4f} (last epoch), "
                  if "validation_accuracy" in last else "")
    bpc = f"test bits per character {test.get('loss', nan) / math.log(2):.4f}, " if config.model in LM_MODELS else ""
    return (f"{config.model} on {config.dataset}: {validation}test accuracy {test.get('accuracy', nan):.4f}, "
            f"test loss {test.get('loss', nan):.4f}, {bpc}{wall_time_s:.1f} s; results in {workdir}")


def wants_kept_host_memory(config: TrainConfig) -> bool:
    """--keep_host_memory: 'on', 'off', or 'auto' = on for the GPT (its step's temporaries are
    hundreds of MB; small models' steps would only lose async dispatch). Decided before JAX's
    backend starts, which is when the dispatch mode is fixed; on GPU it changes nothing."""
    if config.keep_host_memory != "auto":
        return config.keep_host_memory == "on"
    return config.model == "gpt"


def train_command(config: TrainConfig):
    """``jdl train``: join the processes, set up the compilation cache, train, print where the
    results are; returns ``(FitResult, workdir)``."""
    from jdl.train import CheckpointError, NonFiniteError

    from jdl.cli.train_detection import detection_command, is_detection

    start = time.perf_counter()
    start_processes(config)
    use_compilation_cache(compilation_cache_dir(config.compilation_cache))
    if wants_kept_host_memory(config):
        from jdl.runtime import keep_host_memory

        keep_host_memory()
    if is_detection(config):  # boxes, not class labels: jdl/cli/train_detection.py
        return detection_command(config)
    try:
        result, workdir = run_fit(config)
    except (CheckpointError, NonFiniteError) as e:  # a message, not a traceback
        raise SystemExit(f"jdl train: {e}")
    import jax

    if jax.process_index() == 0:
        print(report(config, result, workdir, time.perf_counter() - start))
    return result, workdir
