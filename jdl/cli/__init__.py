"""The ``jdl`` command.

    jdl train [--model=mlp] [--dataset=digits] [--optimizer=adam] [--schedule=cosine] [--epochs=20] ...
    jdl info
    jdl data download NAME [--data_dir=DIR]
    jdl experiment NAME [--quick] [--workdir=DIR]    (from a source checkout)
    jdl bench [--quick] [--workdir=DIR]              (from a source checkout)

Flags are absl flags (``flags.py``); ``jdl train --helpfull`` lists them all. Invalid values are
refused with the list of valid choices. ``main`` reads the parsed flags once: ``jdl train``
gets a frozen ``TrainConfig`` (``TrainConfig.from_flags(FLAGS)``), the other commands plain
arguments; one module per command (``train``, ``info``, ``data``, ``experiment``, ``bench``).
"""

from jdl.cli.builders import (build_cnn_model, build_model, build_optimizer, build_schedule,
                              regularization_options, with_weight_decay)
from jdl.cli.config import TrainConfig
from jdl.cli.flags import (ACTIVATIONS, CNN_MODELS, COMMANDS, DEFAULT_LEARNING_RATES, FLAGS, MODELS, OPTIMIZERS,
                           SCHEDULES)
from jdl.cli.main import main, run
from jdl.cli.train import train_command

__all__ = ["ACTIVATIONS", "CNN_MODELS", "COMMANDS", "DEFAULT_LEARNING_RATES", "FLAGS", "MODELS", "OPTIMIZERS",
           "SCHEDULES", "TrainConfig", "build_cnn_model", "build_model", "build_optimizer", "build_schedule",
           "main", "regularization_options", "run", "train_command", "with_weight_decay"]
