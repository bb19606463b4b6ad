"""Fast paths written apart from the teaching layers: pure functions that compute what a layer
of ``jdl.nn`` computes, formulated for speed (``jdl.kernels.lstm``)."""
