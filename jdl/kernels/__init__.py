"""Fast paths written apart from the teaching layers: pure functions that compute what a layer
of ``jdl.nn`` computes, formulated for speed (``jdl.kernels.lstm``, ``jdl.kernels.conv``,
``jdl.kernels.pooling``); layers use them only when asked (``impl=``)."""
