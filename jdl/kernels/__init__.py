"""Fast paths written apart from the teaching layers: pure functions that compute what a layer of
``jdl.nn`` computes, formulated for memory or speed (the blockwise online-softmax attention,
``jdl.kernels.attention``; the fused LSTM, ``jdl.kernels.lstm``), each proven equal to the plain
definition in value and gradient in its tests and reached through an explicit ``impl=``."""

from jdl.kernels.attention import blockwise_attention
