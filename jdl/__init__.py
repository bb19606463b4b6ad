"""jdl: deep learning in JAX from pure functions.

Every layer and model is a ``Module(init, apply)``:

    init:  (key, x) -> (params, state)
    apply: (params, state, x, *, key=None, train=False, **accepts) -> (y, state)

and ``apply`` refuses a keyword outside key, train and ``Module.accepts`` (see ``jdl.core``).
"""

__version__ = "0.1.0"

from jdl import autodiff, core, data, init, losses, metrics, models, nn, optim, train
from jdl import regularizers
from jdl import contrastive  # triplet and NT-Xent losses (issue 16)
from jdl.core import Module, param_count
from jdl.summary import summary

from jdl import debug, distributed, per_example  # noqa: E402  (debug uses train)

__all__ = ["Module", "param_count", "summary", "autodiff", "contrastive", "core", "data", "debug", "init", "losses",
           "metrics", "models", "nn", "optim", "per_example", "distributed", "regularizers", "train", "__version__"]
