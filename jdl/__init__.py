"""jdl: deep learning in JAX from pure functions.

Every layer and model is a ``Module(init, apply)``:

    init:  (key, x) -> (params, state)
    apply: (params, state, x, *, key=None, train=False) -> (y, state)
"""

__version__ = "0.1.0"

from jdl import autodiff, core, data, init, losses, metrics, models, nn, optim, train
from jdl import regularizers
from jdl.core import Module, param_count
from jdl.summary import summary

__all__ = ["Module", "param_count", "summary", "autodiff", "core", "data", "init", "losses", "metrics",
           "models", "nn", "optim", "regularizers", "train", "__version__"]

from jdl import debug  # noqa: E402  (after train, which it uses)

__all__ += ["debug"]
