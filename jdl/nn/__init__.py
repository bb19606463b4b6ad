"""Layers and combinators: every CamelCase name builds a ``jdl.Module``, every snake_case name
is a pure array function."""

from jdl.nn.activations import (
    PReLU, elu, gelu, leaky_relu, log_softmax, prelu, relu, sigmoid, softmax, step, tanh,
)
from jdl.nn.combinators import as_module, parallel, repeat, residual, serial
from jdl.nn.dropout import Dropout, dropout
from jdl.nn.linear import Dense, Flatten, dense
from jdl.nn.norm import BatchNorm, GroupNorm, InstanceNorm, LayerNorm, RMSNorm, moments, normalize, torch_momentum
