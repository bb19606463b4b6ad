"""Fast paths written apart from the teaching layers: pure functions that compute what a layer of
``jdl.nn`` computes, formulated for memory or speed — the blockwise online-softmax attention
(``jdl.kernels.attention``), the fused LSTM (``jdl.kernels.lstm``), the shifted-sum convolution
(``jdl.kernels.conv``), the tiled max pool (``jdl.kernels.pooling``), the stack of identical
layers with batched weight gradients (``jdl.kernels.repeat``) and the Dense layer whose weight
gradient is a plain matmul of a materialized xᵀ (``jdl.kernels.dense``). Each is proven equal to
the plain definition in its tests, and layers use one only when asked (``impl=``, ``GPTConfig(ffn_impl=)``)."""
