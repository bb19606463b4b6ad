"""Training: the TrainState pytree, pure step builders, evaluation and the ``fit`` loop."""

from jdl.train.fit import FitResult, fit
from jdl.train.plots import plot_history
from jdl.train.state import TrainState, init_train_state
from jdl.train.step import evaluate, make_eval_step, make_step
from jdl.train.checkpoint import Checkpoint, CheckpointError, CheckpointMismatch, CheckpointNotFound, restore
from jdl.train.nonfinite import NonFiniteError
