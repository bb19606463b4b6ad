"""The ``jdl`` command's entry point: absl parses the flags, ``main`` reads them (the only
place besides ``TrainConfig.from_flags``) and calls the command with plain arguments."""

from __future__ import annotations

import sys
from typing import Sequence

from absl import app, logging

from jdl.cli.flags import COMMANDS, FLAGS


def main(argv: Sequence[str]) -> None:
    """Dispatch ``jdl <command>`` (``argv[1]`` in ``COMMANDS``) after absl has parsed the flags."""
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # keep JAX's backend probing out of the output
    if len(argv) < 2 or argv[1] not in COMMANDS:
        got = repr(argv[1]) if len(argv) > 1 else "nothing"
        raise app.UsageError(f"jdl: expected a command, one of {', '.join(COMMANDS)}; got {got}. "
                             "Example: jdl train --epochs=5")
    command, args = argv[1], list(argv[2:])
    if command == "data":
        from jdl.cli.data import data_command

        return data_command(args, FLAGS.data_dir)
    if command == "experiment":
        from jdl.cli.experiment import experiment_command

        return experiment_command(args, workdir=FLAGS.workdir, seed=FLAGS.seed, quick=FLAGS.quick,
                                  compilation_cache=FLAGS.compilation_cache)
    if args:
        raise app.UsageError(f"jdl {command}: unexpected arguments {args}; flags take the form --name=value")
    if command == "train":
        from jdl.cli.config import TrainConfig
        from jdl.cli.train import train_command

        train_command(TrainConfig.from_flags(FLAGS))
    elif command == "bench":
        from jdl.cli.bench import bench_command

        bench_command(workdir=FLAGS.workdir, seed=FLAGS.seed, quick=FLAGS.quick)
    else:
        from jdl.cli.info import info_command

        info_command()


def run() -> None:
    """Console-script entry point (``jdl = "jdl.cli:run"``)."""
    app.run(main, argv=sys.argv)
