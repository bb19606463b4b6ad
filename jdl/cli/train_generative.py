"""``jdl train --model=vae|gan|ddpm``: a generative model on an image set (digits; MNIST when
its files are present), trained on ``jdl.train``'s loop (``Loop``/``run_epochs``: the seeded
batches, the progress bar, metrics.jsonl and TensorBoard, checkpoints and resume, the
non-finite guard), with a grid of samples at fixed noise written every epoch.

    vae   ``dense_vae`` (``--hidden`` layers, latent 8), Bernoulli decoder, loss −ELBO
          (``vae_objective``); per epoch the validation ELBO and its two terms
    gan   ``mlp_generator``/``mlp_discriminator`` (``--hidden`` layers, noise 16), the
          non-saturating loss, one optimizer each in one step (``make_gan_step``); per epoch
          the mean D(x) on validation and D(G(z)) on the fixed noise
    ddpm  ``UNet`` (``--hidden`` = channels per level, e.g. 32,64), cosine schedule, T = 200,
          on pixels mapped to [−1, 1]; per epoch the DDPM loss on validation (fixed t and ε);
          grids by DDIM on 50 steps with x̂_0 clipped to [−1, 1]

Files in the workdir: metrics.jsonl (one record per epoch: ``train_*`` means over the epoch's
steps, ``validation_*``), samples_epoch<E>.png, summary.json (with ``test_*`` measured once at
the end), curves.png (``CURVES``: the VAE's loss and its two terms, the GAN's two losses and D's
means, the DDPM loss), checkpoints/.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable, NamedTuple

import numpy as np
from absl import app

# TrainConfig fields the classifier path uses and these models do not (their defaults are required)
UNUSED = ("activation", "norm", "dropout", "augment", "label_smoothing", "l1", "l2", "restore", "devices",
          "fsdp", "coordinator", "early_stopping_patience", "test_every_epoch", "accumulate_steps", "compute_dtype",
          "lstm_impl", "attention", "fused_optimizer")
# the panels of curves.png: the metrics each model records per epoch (``<split>_<metric>``)
CURVES = {"vae": (("loss",), ("reconstruction", "kl")), "gan": (("d_loss", "g_loss"), ("d_real", "d_fake")),
          "ddpm": (("loss",),)}


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the flags do not set: the VAE's latent size, the GAN's noise size, the DDPM's T and
    schedule and DDIM steps for the grids, the grid's size, the evaluation batch."""
    latent: int = 8
    z_dim: int = 16
    T: int = 200
    schedule: str = "cosine"
    ddim_steps: int = 50
    n_grid: int = 64
    eval_batch_size: int = 256


class Generative(NamedTuple):
    """One model's pieces for the loop: the first train state, ``step(ts, (x, y))``, the
    per-split metrics ``measure(ts, x) -> dict`` and ``sample(ts) -> (n, H, W, C)`` in [0, 1]."""
    ts: Any
    step: Callable
    measure: Callable[[Any, np.ndarray], dict]
    sample: Callable[[Any], np.ndarray]


def check_config(config) -> None:
    """Refuse flags of the classifier path that these models do not read, naming them."""
    from jdl.cli.config import refuse_unread

    refuse_unread(config, UNUSED, "the generative models read --hidden, the optimizer, loop and checkpoint flags")


def load_images(config) -> tuple:
    """(train, validation, test) images (N, H, W, C) in [0, 1] of ``--dataset``; labels kept."""
    from jdl import data
    from jdl.cli.data import load_splits

    if config.dataset not in data.names():
        raise app.UsageError(f"--dataset={config.dataset!r}: valid choices are {', '.join(data.names())}")
    if config.dataset in data.SEQUENCE_LOADERS or config.dataset in data.DETECTION_LOADERS:
        raise app.UsageError(f"--model={config.model} reads images, not --dataset={config.dataset}")
    splits = load_splits(config.dataset, config.data_dir, config.validation_fraction, train_size=config.train_size)
    x = splits[0][0]
    if x.ndim != 4 or x.min() < 0 or x.max() > 1:
        raise app.UsageError(f"--model={config.model} needs images (H, W, C) with pixels in [0, 1]; "
                             f"--dataset={config.dataset} has examples of shape {x.shape[1:]} in "
                             f"[{x.min():.3g}, {x.max():.3g}] (try --dataset=digits or mnist)")
    return splits


def split_measure(eval_step: Callable, batch_size: int) -> Callable[[Any, np.ndarray], dict]:
    """``measure(ts, x)``: ``jdl.train.evaluate`` of ``eval_step(params, state, x, y, mask)``
    (masked sums over a padded batch) over the whole split x, every batch padded to
    ``batch_size`` (the identity ``put`` keeps the size), so that all splits share one compile."""
    from jdl.train import evaluate

    return lambda ts, x: evaluate(eval_step, ts.params, ts.state, x, np.zeros(len(x), np.int32), batch_size,
                                  put=lambda batch: batch)


def build(config, settings: Settings, shape: tuple, optimizer) -> Generative:
    """The ``Generative`` of ``config.model`` for images of ``shape`` (H, W, C)."""
    from jdl.cli import generative_models

    builder = {"vae": generative_models.vae_parts, "gan": generative_models.gan_parts,
               "ddpm": generative_models.ddpm_parts}[config.model]
    try:
        return builder(config, settings, shape, optimizer)
    except ValueError as e:  # e.g. a U-Net with more levels than the image's size allows
        raise app.UsageError(f"--model={config.model} --hidden={','.join(map(str, config.hidden))}: {e}") from None


def run_generative(config, settings: Settings = Settings()):
    """Train ``config.model`` as the config says; returns (``FitResult``, workdir)."""
    from tqdm.auto import tqdm

    from jdl.cli.train import build_optimizer_for
    from jdl.train import FitResult, fit_setup, nonfinite, runlog, writers
    from jdl.train import stopping as es_lib
    from jdl.train.epochs import Loop, Run, run_epochs
    from jdl.train.loop import LoopState
    from jdl.train.plots import plot_history, save_image_grid
    from jdl.train.saver import Saver

    check_config(config)
    train, validation, test = load_images(config)
    start = time.perf_counter()
    workdir = config.workdir or os.path.join("runs", f"{config.model}-{config.dataset}-{time.strftime('%Y%m%d-%H%M%S')}")
    data = fit_setup.check_data(train, validation, test, epochs=config.epochs, batch_size=config.batch_size,
                                accumulate_steps=1, checkpoint_every=config.checkpoint_every or None,
                                keep=config.keep, workdir=workdir)
    gen = build(config, settings, train[0].shape[1:], build_optimizer_for(config, len(train[0])))
    record, commit, order = config.record(), runlog.git_commit(), fit_setup.data_order(data, config.seed)
    saver = Saver(workdir, config.checkpoint_every, config.keep, order, record, commit) if config.checkpoint_every else None
    ts, loop_state, best = gen.ts, LoopState(0, 0, {}, [], es_lib.early_stopping("validation_loss", None)), None
    if saver is not None:
        ts, loop_state, best = saver.resume(ts, loop_state)
    run = Run(ts, loop_state, best)
    out = fit_setup.open_writers(workdir, run.loop.history, record, commit, run.t, True)
    total = config.epochs * order["steps_per_epoch"]
    bar = tqdm(total=total, initial=min(run.t, total), disable=not config.progress, unit="step", dynamic_ncols=True)
    grid = lambda epoch, rec, ts: save_image_grid(os.path.join(workdir, f"samples_epoch{epoch:03d}.png"),  # noqa: E731
                                                  gen.sample(ts), n_cols=8)
    guard = config.on_nonfinite == "stop" and config.model != "gan"
    loop = Loop(gen.step, lambda ts: {f"validation_{k}": v for k, v in gen.measure(ts, data.validation[0]).items()}
                if data.validation is not None else {}, data.train, data.batch_size, config.seed, config.epochs,
                order["steps_per_epoch"], None, saver, nonfinite.Guard(nonfinite.flag_names(ts.params)) if guard else None,
                [*out.writers, writers.progress_writer(bar)], [grid], lambda: bar.update(1))
    try:
        run_epochs(loop, run)
    finally:
        bar.close()
        out.close()
    test_metrics = gen.measure(run.ts, data.test[0])
    history = run.loop.history
    writers.write_summary(os.path.join(workdir, "summary.json"), history, wall_time_s=time.perf_counter() - start,
                          steps=run.t, config=record, git_commit=commit,
                          checkpoint=saver.last_good if saver else None, test=test_metrics)
    if history:
        plot_history(history, os.path.join(workdir, "curves.png"), title=f"{config.model} on {config.dataset}",
                     panels=CURVES[config.model])
    return FitResult(run.ts, history, test_metrics), workdir


def report(config, result, workdir: str, wall_time_s: float) -> str:
    """The line ``jdl train`` prints for a generative model: its test metrics, time, workdir."""
    shown = ", ".join(f"test {k} {v:.4f}" for k, v in (result.test or {}).items())
    return f"{config.model} on {config.dataset}: {shown}, {wall_time_s:.1f} s; samples and metrics in {workdir}"
