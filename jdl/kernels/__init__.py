"""Kernels: the same functions as ``jdl.nn`` computed another way, for memory or speed (the
blockwise, online-softmax attention), each proven equal to the plain definition in its tests."""

from jdl.kernels.attention import blockwise_attention
