"""Training: the TrainState pytree, the pure step (``make_step`` on any loss function,
``supervised`` for a model and a loss), evaluation, early stopping, and the ``fit`` loop."""

from jdl.train.stopping import EarlyStopping, early_stopping
from jdl.train.batch_stats import recompute_batch_stats
from jdl.train.evaluate import evaluate, make_eval_step
from jdl.train.fit import FitResult, fit
from jdl.train.plots import plot_history
from jdl.train.state import TrainState, init_train_state
from jdl.train.step import make_step
from jdl.train.supervised import apply_in, supervised
from jdl.train.checkpoint import Checkpoint, CheckpointError, CheckpointMismatch, CheckpointNotFound, restore
from jdl.train.nonfinite import NonFiniteError
from jdl.train.transfer import TransferReport, load_matching, restore_matching, starting_from
from jdl.train import probe, selfsupervised  # issue 16: SimCLR, rotation prediction, linear probes
