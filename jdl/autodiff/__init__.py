"""Automatic differentiation for teaching: gradient checking, a scalar reverse-mode engine
(``scalar``), backprop by hand (``manual``), backprop through time by hand (``bptt``),
BatchNorm's backward pass by hand (``batchnorm``) and the traced computation graph (``graph``)."""

from jdl.autodiff.gradcheck import (
    check_grads, compare_grads, grad_report, numerical_grad, relative_error,
)
from jdl.autodiff import manual
from jdl.autodiff import scalar
from jdl.autodiff import graph
from jdl.autodiff import bptt
from jdl.autodiff import batchnorm
