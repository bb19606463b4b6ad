"""The ``jdl`` command.

    jdl train [--model=mlp] [--dataset=digits] [--optimizer=adam] [--schedule=cosine] [--epochs=20] ...
    jdl info
    jdl data download NAME [--data_dir=DIR]
    jdl experiment NAME [--quick] [--workdir=DIR]    (from a source checkout)
    jdl bench [--quick] [--workdir=DIR]              (from a source checkout)

Flags are absl flags; ``jdl train --helpfull`` lists them all. Invalid values are refused with
the list of valid choices.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from typing import Sequence

from absl import app, flags, logging

COMMANDS = ("train", "info", "data", "experiment", "bench")
# --- cnn models (issue 6): image models take (H, W, C) inputs, cnn1d takes (L,) or (L, C) ---
CNN_MODELS = ("lenet5", "cnn", "vgg", "googlenet", "resnet20", "resnet32", "resnet56", "plain20", "plain32",
              "plain56", "cnn1d")
MODELS = ("mlp",) + CNN_MODELS
OPTIMIZERS = ("sgd", "momentum_ema", "adagrad", "rmsprop", "adam", "adamw", "adam_l2")
# the learning rate each optimizer gets when --learning_rate is not given
DEFAULT_LEARNING_RATES = {"sgd": 0.1, "momentum_ema": 0.1, "adagrad": 0.05, "rmsprop": 1e-3, "adam": 1e-3,
                          "adamw": 1e-3, "adam_l2": 1e-3}
SCHEDULES = ("constant", "exponential", "step", "inverse_time", "cosine", "warmup_cosine")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "elu", "leaky_relu")

FLAGS = flags.FLAGS
flags.DEFINE_enum("model", "mlp", MODELS, "Model to train.")
flags.DEFINE_string("dataset", "digits", "Data set (see `jdl info` for the list).")
flags.DEFINE_enum("optimizer", "adam", OPTIMIZERS, "Optimizer (adam, lr 1e-3, trains digits better than sgd, lr 0.1).")
flags.DEFINE_float("learning_rate", None, "Learning rate η (default: the optimizer's, "
                   f"{DEFAULT_LEARNING_RATES}).", lower_bound=0.0)
flags.DEFINE_integer("batch_size", 32, "Minibatch size.", lower_bound=1)
flags.DEFINE_integer("epochs", 20, "Passes over the training set.", lower_bound=0)
flags.DEFINE_integer("seed", 0, "Seed for init, data order and dropout.")
flags.DEFINE_list("hidden", ["128"], "MLP hidden layer sizes, comma-separated.")
flags.DEFINE_enum("activation", "relu", ACTIVATIONS, "Hidden activation of the MLP.")
flags.DEFINE_string("workdir", None, "Where metrics.jsonl, summary.json and curves.png go "
                    "(default: runs/<model>-<dataset>-<time>).")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
# --- optim flags ---
flags.DEFINE_float("momentum", None, "Momentum μ in [0, 1) for sgd and rmsprop (β for momentum_ema; "
                   "default: none, 0.9 for momentum_ema).", lower_bound=0.0, upper_bound=0.999999)
flags.DEFINE_bool("nesterov", False, "Nesterov momentum (sgd, rmsprop; needs --momentum).")
flags.DEFINE_enum("schedule", "constant", SCHEDULES, "Learning-rate schedule over the update steps.")
flags.DEFINE_float("decay_rate", 0.5, "exponential/step: factor per --decay_steps; inverse_time: k in "
                   "η/(1 + k·t/decay_steps).", lower_bound=0.0)
flags.DEFINE_integer("decay_steps", None, "Steps per decay period (default: one epoch).", lower_bound=1)
flags.DEFINE_integer("warmup_steps", None, "warmup_cosine: linear warmup steps (default: one epoch).",
                     lower_bound=0)
# --- regularization flags ---
flags.DEFINE_float("dropout", 0.0, "Dropout probability p after every hidden activation.", lower_bound=0.0, upper_bound=0.99)
flags.DEFINE_float("weight_decay", 0.0, "Weight decay λ: λ·w added to the weights' gradient before the "
                  "optimizer (with sgd the same as --l2=λ; for decoupled decay use --optimizer=adamw).", lower_bound=0.0)
flags.DEFINE_float("l1", 0.0, "L1 penalty λ₁·‖w‖₁ on the weights, added to the loss.", lower_bound=0.0)
flags.DEFINE_float("l2", 0.0, "L2 penalty λ₂/2·‖w‖² on the weights, added to the loss.", lower_bound=0.0)
flags.DEFINE_enum("norm", "none", ("none", "batch", "layer"), "Normalization after every hidden Dense.")
flags.DEFINE_bool("augment", False, "Augment training batches (images: shifts and ±10° rotations; vectors: noise).")
flags.DEFINE_float("label_smoothing", 0.0, "Label smoothing ε of the cross-entropy.", lower_bound=0.0, upper_bound=0.99)
flags.DEFINE_integer("early_stopping_patience", None, "Stop when the test loss has not improved for this "
                     "many epochs, keeping the best params.", lower_bound=1)
REGULARIZATION_FLAGS = ("dropout", "weight_decay", "l1", "l2", "norm", "augment", "label_smoothing",
                        "early_stopping_patience")
# --- experiment and bench flags ---
flags.DEFINE_bool("quick", False, "jdl experiment / jdl bench: a few steps of everything, to check it runs.")
# --- checkpoint flags ---
flags.DEFINE_integer("checkpoint_every", 100, "Write a checkpoint to <workdir>/checkpoints every N steps "
                     "(also at the best epoch, at the end and on SIGINT/SIGTERM); 0: none. A workdir "
                     "that has checkpoints is resumed where it stopped.", lower_bound=0)
flags.DEFINE_integer("keep", 3, "Checkpoints kept: the last K, plus the best by test loss.", lower_bound=1)
flags.DEFINE_string("restore", None, "Start from the params of this checkpoint (a run's workdir or one "
                    "checkpoints/<step> folder) with a fresh optimizer: fine-tuning, or evaluation "
                    "alone with --epochs=0.")
flags.DEFINE_enum("compute_dtype", "float32", ["float32", "bfloat16"], "Mixed precision: forward and "
                  "backward passes in this dtype, params and optimizer state in float32. (float16 would "
                  "need loss scaling, which jdl does not do.)")
flags.DEFINE_enum("on_nonfinite", "stop", ["stop", "skip", "ignore"], "On a NaN/inf loss, gradient or "
                  "param: stop naming the step and param, skip the step, or ignore it.")

flags.DEFINE_string("compilation_cache", None, "Folder of JAX's persistent compilation cache for jdl "
                    "train and jdl experiment: a second run of the same model and shapes skips XLA "
                    "compilation (ResNet-20, one epoch on digits: 8.4 s → 3.4 s). Default $JDL_CACHE, "
                    "else $JAX_COMPILATION_CACHE_DIR, else ~/.cache/jdl/xla; 'none' turns it off.")

# --- data flags ---
flags.DEFINE_string("data_dir", None, "Data root of file-based data sets (mnist, fashion_mnist, "
                    "cifar10, the mnist1d cache); default $JDL_DATA, else ~/.cache/jdl. See docs/data.md.")


def load_data(name: str, split: str):
    """``jdl.data.load(name, split, --data_dir)``; missing or corrupt files become a usage error
    that says which files to put where."""
    from jdl import data

    try:
        return data.load(name, split, data_dir=FLAGS.data_dir)
    except (FileNotFoundError, data.DataFileError) as e:
        raise app.UsageError(str(e)) from None


def compilation_cache_dir() -> str | None:
    """The persistent compilation cache folder ``--compilation_cache`` names (see its help), or
    None when it is 'none'."""
    from jdl.data.files import cache_root

    value = (FLAGS.compilation_cache or os.environ.get("JDL_CACHE") or os.environ.get("JAX_COMPILATION_CACHE_DIR")
             or os.path.join(cache_root(), "xla"))
    return None if value == "none" else os.path.abspath(os.path.expanduser(value))


# Cache every compiled program, however small or quick to compile: a training run compiles
# dozens of small ones (one per initializer shape), and together they are most of its start-up.
CACHE_CONFIG = {"jax_persistent_cache_min_compile_time_secs": 0, "jax_persistent_cache_min_entry_size_bytes": -1}


def use_compilation_cache(path: str | None) -> dict:
    """Point JAX's persistent compilation cache at ``path`` for this process (before its first
    compilation: JAX decides then) and return the same settings as environment variables for
    child processes; nothing when ``path`` is None or cannot be created (then with a warning)."""
    if path is None:
        return {}
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        print(f"jdl: cannot use {path} as the compilation cache ({e}); compiling without it "
              "(--compilation_cache=none silences this)", file=sys.stderr)
        return {}
    import jax

    jax.config.update("jax_compilation_cache_dir", path)
    for name, value in CACHE_CONFIG.items():
        jax.config.update(name, value)
    return {"JAX_COMPILATION_CACHE_DIR": path, **{k.upper(): str(v) for k, v in CACHE_CONFIG.items()}}


def data_command(args: Sequence[str]) -> None:
    """``jdl data download NAME``: fetch NAME's published files into the data root and verify
    them (the only jdl command that uses the network; nothing else downloads)."""
    from jdl import data
    from jdl.data.fetch import DOWNLOADABLE

    if len(args) != 2 or args[0] != "download":
        raise app.UsageError(f"jdl data: expected `jdl data download NAME` with NAME one of "
                             f"{', '.join(DOWNLOADABLE)}; got {' '.join(args) or 'nothing'}")
    try:
        data.download(args[1], FLAGS.data_dir)
    except (ValueError, OSError) as e:
        raise app.UsageError(f"jdl data download {args[1]}: {e}") from None


def checkpoint_options() -> dict:
    """``fit``'s keyword arguments for the checkpoint, non-finite and precision flags."""
    return {"checkpoint_every": FLAGS.checkpoint_every or None, "keep": FLAGS.keep, "restore": FLAGS.restore,
            "on_nonfinite": None if FLAGS.on_nonfinite == "ignore" else FLAGS.on_nonfinite,
            "compute_dtype": None if FLAGS.compute_dtype == "float32" else FLAGS.compute_dtype}


def build_model(name: str, n_classes: int, hidden: Sequence[int], activation: str,
                norm: str = "none", dropout: float = 0.0, input_shape: Sequence[int] | None = None):
    """The model named by ``--model``, ending in ``n_classes`` logits; ``input_shape`` is one
    example's shape (no batch axis), which the convolutional models adapt to."""
    from jdl import models, nn

    if name == "mlp":
        return models.mlp([*hidden, n_classes], activation=getattr(nn, activation), norm=norm, dropout=dropout)
    if name in CNN_MODELS:
        return build_cnn_model(name, n_classes, input_shape, norm, dropout)
    raise app.UsageError(f"--model={name!r}: valid choices are {', '.join(MODELS)}")


def build_cnn_model(name: str, n_classes: int, input_shape: Sequence[int] | None, norm: str = "none",
                    dropout: float = 0.0):
    """A convolutional model of ``CNN_MODELS`` for inputs of ``input_shape``: ``--norm`` goes
    between the blocks of cnn and after the convolutions of vgg; ResNets always use BatchNorm."""
    from jdl import models, nn

    shape = tuple(input_shape or ())
    if dropout:
        raise app.UsageError(f"--dropout applies to --model=mlp only, not --model={name}")
    if name == "cnn1d":
        if len(shape) not in (1, 2):
            raise app.UsageError(f"--model=cnn1d needs sequences (L,) or (L, C); the data set's examples are {shape}")
        return models.cnn1d(n_classes)
    if len(shape) != 3:
        raise app.UsageError(f"--model={name} needs images (H, W, C); the data set's examples are {shape} "
                             "(use --model=cnn1d or mlp)")
    norm_layer = {"none": None, "batch": nn.BatchNorm, "layer": nn.LayerNorm}[norm]
    if name == "lenet5":
        return models.lenet5(n_classes, shape)
    if name == "cnn":
        return models.cnn(n_classes, shape, (32, 64), norm=norm_layer, hidden=(128,))
    if name == "vgg":
        return models.vgg("vgg_small", n_classes, norm=norm_layer)
    if name == "googlenet":
        return models.googlenet_small(n_classes)
    return models.cifar_resnet(int(name[-2:]), n_classes, shortcut=name.startswith("resnet"))


def build_schedule(name: str, learning_rate: float, total_steps: int, decay_rate: float = 0.5,
                   decay_steps: int | None = None, warmup_steps: int | None = None):
    """The learning rate named by ``--schedule``: a float for ``constant``, else a schedule t ↦ η_t
    over ``total_steps`` updates (``decay_steps`` and ``warmup_steps`` default to total/epochs)."""
    from jdl.optim import schedules as s

    period = max(1, decay_steps or total_steps)
    if name == "constant":
        return learning_rate
    if name == "exponential":
        return s.exponential_decay(learning_rate, period, decay_rate)
    if name == "step":
        return s.step_decay(learning_rate, period, decay_rate)
    if name == "inverse_time":
        return s.inverse_time_decay(learning_rate, decay_rate, period)
    if name == "cosine":
        return s.cosine_decay_schedule(learning_rate, max(1, total_steps))
    if name == "warmup_cosine":
        warmup = min(warmup_steps if warmup_steps is not None else period, max(0, total_steps - 1))
        return s.warmup_cosine_decay_schedule(0.0, learning_rate, warmup, max(warmup + 1, total_steps))
    raise app.UsageError(f"--schedule={name!r}: valid choices are {', '.join(SCHEDULES)}")


def build_optimizer(name: str, learning_rate=None, momentum: float | None = None, nesterov: bool = False):
    """The optimizer named by ``--optimizer``; ``learning_rate`` is a float, a schedule, or None for
    the optimizer's default (``DEFAULT_LEARNING_RATES``)."""
    from jdl import optim

    if name not in OPTIMIZERS:
        raise app.UsageError(f"--optimizer={name!r}: valid choices are {', '.join(OPTIMIZERS)}")
    lr = DEFAULT_LEARNING_RATES[name] if learning_rate is None else learning_rate
    if (momentum is not None or nesterov) and name not in ("sgd", "rmsprop", "momentum_ema"):
        raise app.UsageError(f"--momentum/--nesterov apply to sgd, rmsprop and momentum_ema, not --optimizer={name}")
    if nesterov and momentum is None:
        raise app.UsageError("--nesterov needs --momentum, e.g. --momentum=0.9 --nesterov")
    try:
        if name == "sgd":
            return optim.sgd(lr, momentum, nesterov)
        if name == "rmsprop":
            return optim.rmsprop(lr, momentum=momentum, nesterov=nesterov)
        if name == "momentum_ema":
            return optim.momentum_ema(lr, 0.9 if momentum is None else momentum)
        return getattr(optim, name)(lr)
    except ValueError as e:
        raise app.UsageError(f"--optimizer={name}: {e}")


def regularization_options(x_shape: Sequence[int], batch_size: int) -> dict:
    """``fit``'s ``penalty``, ``augment`` and ``early_stopping_patience`` from the flags."""
    from jdl import regularizers
    from jdl.data import augment

    options: dict = {"early_stopping_patience": FLAGS.early_stopping_patience}
    if FLAGS.l1 or FLAGS.l2:
        options["penalty"] = regularizers.penalty(l1_coef=FLAGS.l1, l2_coef=FLAGS.l2)
    if FLAGS.augment:
        options["augment"] = augment.default((batch_size, *x_shape[1:]))
    return options


def with_weight_decay(optimizer, weight_decay: float):
    """``chain(add_decayed_weights(λ, mask=weights_only), optimizer)``: the optimizer sees
    g + λ·w for the weights ``w`` (not biases or norm parameters). With ``sgd`` that is
    w ← (1 − ηλ)·w − η·g, the same as ``--l2=λ``; with ``adam`` it is Adam + L2, not AdamW."""
    from jdl import optim

    if not weight_decay:
        return optimizer
    return optim.chain(optim.add_decayed_weights(weight_decay, mask=optim.weights_only), optimizer)


def train_command() -> dict:
    """``jdl train``: train a model on a data set with ``jdl.train.fit``; returns the summary."""
    import numpy as np

    from jdl import data, losses, train

    if FLAGS.dataset not in data.names():
        raise app.UsageError(f"--dataset={FLAGS.dataset!r}: valid choices are {', '.join(data.names())}")
    try:
        hidden = [int(h) for h in FLAGS.hidden]
    except ValueError:
        raise app.UsageError(f"--hidden={','.join(FLAGS.hidden)!r}: expected comma-separated positive ints")
    if any(h < 1 for h in hidden):
        raise app.UsageError(f"--hidden={','.join(FLAGS.hidden)!r}: sizes must be positive")
    train_data, test_data = load_data(FLAGS.dataset, "train"), load_data(FLAGS.dataset, "test")
    n_classes = int(np.max(train_data[1])) + 1
    model = build_model(FLAGS.model, n_classes, hidden, FLAGS.activation, FLAGS.norm, FLAGS.dropout,
                        input_shape=train_data[0].shape[1:])
    from jdl.data.batching import num_batches

    learning_rate = (DEFAULT_LEARNING_RATES[FLAGS.optimizer] if FLAGS.learning_rate is None
                     else FLAGS.learning_rate)
    steps_per_epoch = num_batches(len(train_data[0]), min(FLAGS.batch_size, len(train_data[0])))
    lr = build_schedule(FLAGS.schedule, learning_rate, FLAGS.epochs * steps_per_epoch, FLAGS.decay_rate,
                        FLAGS.decay_steps or steps_per_epoch, FLAGS.warmup_steps)
    optimizer = with_weight_decay(build_optimizer(FLAGS.optimizer, lr, FLAGS.momentum, FLAGS.nesterov),
                                  FLAGS.weight_decay)
    config = {name: FLAGS[name].value for name in
              ("model", "dataset", "optimizer", "batch_size", "epochs", "seed", "hidden", "activation",
               "momentum", "nesterov", "schedule", "decay_rate", "decay_steps", "warmup_steps", "compute_dtype",
               *REGULARIZATION_FLAGS)}
    config["learning_rate"] = learning_rate
    regularization = regularization_options(train_data[0].shape, FLAGS.batch_size)
    workdir = FLAGS.workdir or os.path.join(
        "runs", f"{FLAGS.model}-{FLAGS.dataset}-{time.strftime('%Y%m%d-%H%M%S')}")
    loss_fn = functools.partial(losses.softmax_cross_entropy, label_smoothing=FLAGS.label_smoothing)
    result = train.fit(model, loss_fn, optimizer, train_data, test_data,
                       epochs=FLAGS.epochs, batch_size=FLAGS.batch_size, seed=FLAGS.seed,
                       workdir=workdir, config=config, progress=FLAGS.progress, **regularization,
                       **checkpoint_options(), eval_loss_fn=losses.softmax_cross_entropy)
    with open(os.path.join(workdir, "summary.json")) as f:
        summary = json.load(f)
    final = result.history[-1] if result.history else {}
    if not result.history and FLAGS.restore:  # --epochs=0: evaluate the restored params
        ts = result.train_state
        final = {f"test_{k}": v for k, v in train.evaluate(
            train.make_eval_step(model, losses.softmax_cross_entropy), ts.params, ts.state, *test_data).items()}
    print(f"{FLAGS.model} on {FLAGS.dataset}: test accuracy {final.get('test_accuracy', float('nan')):.4f}, "
          f"test loss {final.get('test_loss', float('nan')):.4f}, {summary['wall_time_s']:.1f} s; "
          f"results in {workdir}")
    return summary


def source_root() -> str:
    """The source checkout that holds ``experiments/`` and ``benchmarks/``: they sit beside the
    ``jdl`` package in the repository and are not installed with it."""
    import jdl

    root = os.path.dirname(os.path.dirname(os.path.abspath(jdl.__file__)))
    if not os.path.isdir(os.path.join(root, "experiments")):
        raise app.UsageError(f"experiments/ and benchmarks/ live in jdl's source checkout, not found beside "
                             f"{os.path.dirname(jdl.__file__)}; install jdl from a clone with pip install -e .")
    return root


def experiment_names(root: str) -> list[str]:
    """The runnable experiments: the modules of ``experiments/`` that define ``run``."""
    names = []
    for file in sorted(os.listdir(os.path.join(root, "experiments"))):
        if file.endswith(".py") and not file.startswith("_"):
            with open(os.path.join(root, "experiments", file)) as f:
                if "\ndef run(" in f.read():
                    names.append(file[:-3])
    return names


def _run_module(root: str, module: str, args: list[str], env_extra: dict | None = None) -> None:
    """``python -m module args`` with the checkout on the path, in the caller's directory, in its
    own process (experiments and the harness define their own flags); exits with its status."""
    import subprocess

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
               **(env_extra or {}))
    status = subprocess.call([sys.executable, "-m", module, *args], env=env)
    if status:
        raise SystemExit(status)


def experiment_command(args: Sequence[str]) -> None:
    """``jdl experiment NAME [--quick] [--seed=S] [--workdir=DIR]``: run ``experiments/NAME.py``,
    which writes results.json and its plots into the workdir (default runs/experiments/NAME)."""
    root = source_root()
    names = experiment_names(root)
    if len(args) != 1 or args[0] not in names:
        got = repr(args[0]) if args else "nothing"
        raise app.UsageError(f"jdl experiment: expected one of {', '.join(names)}; got {got}")
    workdir = os.path.abspath(FLAGS.workdir or os.path.join("runs", "experiments", args[0]))
    _run_module(root, f"experiments.{args[0]}",
                [f"--workdir={workdir}", f"--seed={FLAGS.seed}", f"--quick={str(FLAGS.quick).lower()}"],
                use_compilation_cache(compilation_cache_dir()))


def bench_command() -> None:
    """``jdl bench [--quick] [--workdir=DIR]``: the benchmark harness (jdl vs flax+optax vs
    PyTorch); ``python -m benchmarks.run --help`` has its finer options."""
    root = source_root()
    workdir = os.path.abspath(FLAGS.workdir or os.path.join("runs", "benchmarks"))
    _run_module(root, "benchmarks.run", [f"--out={workdir}", f"--seed={FLAGS.seed}"] + (["--quick"] if FLAGS.quick else []))


def info_command() -> None:
    """``jdl info``: versions, devices and what ``jdl train`` offers."""
    import jax

    import jdl
    from jdl import data

    print(f"jdl {jdl.__version__}, jax {jax.__version__}, backend {jax.default_backend()}, "
          f"devices {jax.devices()}")
    print(f"models: {', '.join(MODELS)}\ndata sets: {', '.join(data.names())}\n"
          f"optimizers: {', '.join(OPTIMIZERS)}\nschedules: {', '.join(SCHEDULES)}")


def main(argv: Sequence[str]) -> None:
    """Dispatch ``jdl <command>`` (``argv[1]`` in ``COMMANDS``) after absl has parsed the flags."""
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # keep JAX's backend probing out of the output
    if len(argv) < 2 or argv[1] not in COMMANDS:
        got = repr(argv[1]) if len(argv) > 1 else "nothing"
        raise app.UsageError(f"jdl: expected a command, one of {', '.join(COMMANDS)}; got {got}. "
                             "Example: jdl train --epochs=5")
    if argv[1] == "data":
        return data_command(argv[2:])
    if argv[1] == "experiment":
        return experiment_command(argv[2:])
    if len(argv) > 2:
        raise app.UsageError(f"jdl {argv[1]}: unexpected arguments {argv[2:]}; flags take the form --name=value")
    if argv[1] == "train":
        from jdl.train import CheckpointError, NonFiniteError

        use_compilation_cache(compilation_cache_dir())
        try:
            train_command()
        except (CheckpointError, NonFiniteError) as e:  # a message, not a traceback
            raise SystemExit(f"jdl train: {e}")
    elif argv[1] == "bench":
        bench_command()
    else:
        info_command()


def run() -> None:
    """Console-script entry point."""
    app.run(main, argv=sys.argv)


if __name__ == "__main__":
    run()
