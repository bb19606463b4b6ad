"""The ``jdl`` command.

    jdl train [--model=mlp] [--dataset=digits] [--optimizer=sgd] [--epochs=20] ...
    jdl info

Flags are absl flags; ``jdl train --helpfull`` lists them all. Invalid values are refused with
the list of valid choices.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Sequence

from absl import app, flags, logging

COMMANDS = ("train", "info")
MODELS = ("mlp",)
OPTIMIZERS = ("sgd",)
ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "elu", "leaky_relu")

FLAGS = flags.FLAGS
flags.DEFINE_enum("model", "mlp", MODELS, "Model to train.")
flags.DEFINE_string("dataset", "digits", "Data set (see `jdl info` for the list).")
flags.DEFINE_enum("optimizer", "sgd", OPTIMIZERS, "Optimizer.")
flags.DEFINE_float("learning_rate", 0.1, "Learning rate η.", lower_bound=0.0)
flags.DEFINE_integer("batch_size", 32, "Minibatch size.", lower_bound=1)
flags.DEFINE_integer("epochs", 20, "Passes over the training set.", lower_bound=0)
flags.DEFINE_integer("seed", 0, "Seed for init, data order and dropout.")
flags.DEFINE_list("hidden", ["128"], "MLP hidden layer sizes, comma-separated.")
flags.DEFINE_enum("activation", "relu", ACTIVATIONS, "Hidden activation of the MLP.")
flags.DEFINE_string("workdir", None, "Where metrics.jsonl, summary.json and curves.png go "
                    "(default: runs/<model>-<dataset>-<time>).")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
# --- checkpoint flags ---
flags.DEFINE_integer("checkpoint_every", 100, "Write a checkpoint to <workdir>/checkpoints every N steps "
                     "(also at the best epoch, at the end and on SIGINT/SIGTERM); 0: none. A workdir "
                     "that has checkpoints is resumed where it stopped.", lower_bound=0)
flags.DEFINE_integer("keep", 3, "Checkpoints kept: the last K, plus the best by test loss.", lower_bound=1)
flags.DEFINE_string("restore", None, "Start from the params of this checkpoint (a run's workdir or one "
                    "checkpoints/<step> folder) with a fresh optimizer: fine-tuning, or evaluation "
                    "alone with --epochs=0.")
flags.DEFINE_enum("on_nonfinite", "stop", ["stop", "skip", "ignore"], "On a NaN/inf loss, gradient or "
                  "param: stop naming the step and param, skip the step, or ignore it.")


def checkpoint_options() -> dict:
    """``fit``'s keyword arguments for the checkpoint flags."""
    return {"checkpoint_every": FLAGS.checkpoint_every or None, "keep": FLAGS.keep, "restore": FLAGS.restore,
            "on_nonfinite": None if FLAGS.on_nonfinite == "ignore" else FLAGS.on_nonfinite}


def build_model(name: str, n_classes: int, hidden: Sequence[int], activation: str):
    """The model named by ``--model``, ending in ``n_classes`` logits."""
    from jdl import models, nn

    if name == "mlp":
        return models.mlp([*hidden, n_classes], activation=getattr(nn, activation))
    raise app.UsageError(f"--model={name!r}: valid choices are {', '.join(MODELS)}")


def build_optimizer(name: str, learning_rate: float):
    """The optimizer named by ``--optimizer``."""
    from jdl import optim

    if name == "sgd":
        return optim.sgd(learning_rate)
    raise app.UsageError(f"--optimizer={name!r}: valid choices are {', '.join(OPTIMIZERS)}")


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
    train_data, test_data = data.load(FLAGS.dataset, "train"), data.load(FLAGS.dataset, "test")
    n_classes = int(np.max(train_data[1])) + 1
    model = build_model(FLAGS.model, n_classes, hidden, FLAGS.activation)
    optimizer = build_optimizer(FLAGS.optimizer, FLAGS.learning_rate)
    config = {name: FLAGS[name].value for name in
              ("model", "dataset", "optimizer", "learning_rate", "batch_size", "epochs", "seed",
               "hidden", "activation")}
    workdir = FLAGS.workdir or os.path.join(
        "runs", f"{FLAGS.model}-{FLAGS.dataset}-{time.strftime('%Y%m%d-%H%M%S')}")
    result = train.fit(model, losses.softmax_cross_entropy, optimizer, train_data, test_data,
                       epochs=FLAGS.epochs, batch_size=FLAGS.batch_size, seed=FLAGS.seed,
                       workdir=workdir, config=config, progress=FLAGS.progress, **checkpoint_options())
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


def info_command() -> None:
    """``jdl info``: versions, devices and what ``jdl train`` offers."""
    import jax

    import jdl
    from jdl import data

    print(f"jdl {jdl.__version__}, jax {jax.__version__}, backend {jax.default_backend()}, "
          f"devices {jax.devices()}")
    print(f"models: {', '.join(MODELS)}\ndata sets: {', '.join(data.names())}\n"
          f"optimizers: {', '.join(OPTIMIZERS)}")


def main(argv: Sequence[str]) -> None:
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # keep JAX's backend probing out of the output
    if len(argv) < 2 or argv[1] not in COMMANDS:
        got = repr(argv[1]) if len(argv) > 1 else "nothing"
        raise app.UsageError(f"jdl: expected a command, one of {', '.join(COMMANDS)}; got {got}. "
                             "Example: jdl train --epochs=5")
    if len(argv) > 2:
        raise app.UsageError(f"jdl {argv[1]}: unexpected arguments {argv[2:]}; flags take the form --name=value")
    if argv[1] == "train":
        from jdl.train import CheckpointError, NonFiniteError

        try:
            train_command()
        except (CheckpointError, NonFiniteError) as e:  # a message, not a traceback
            raise SystemExit(f"jdl train: {e}")
    else:
        info_command()


def run() -> None:
    """Console-script entry point."""
    app.run(main, argv=sys.argv)


if __name__ == "__main__":
    run()
