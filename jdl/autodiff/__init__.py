"""Automatic differentiation for teaching: gradient checking (and, later, a scalar engine,
manual backprop and the computation graph)."""

from jdl.autodiff.gradcheck import (
    check_grads, compare_grads, grad_report, numerical_grad, relative_error,
)
from jdl.autodiff import manual
from jdl.autodiff import scalar
from jdl.autodiff import graph
