"""Fast paths written apart from the teaching layers: pure functions that compute what a layer of
``jdl.nn`` computes, formulated for memory or speed — the blockwise online-softmax attention
(``jdl.kernels.attention``), the fused LSTM (``jdl.kernels.lstm``), the shifted-sum convolution
(``jdl.kernels.conv``), the tiled max pool (``jdl.kernels.pooling``), the stack of identical
layers with batched weight gradients (``jdl.kernels.repeat``) and the Dense layer whose weight
gradient is a plain matmul of a materialized xᵀ (``jdl.kernels.dense``); and C++ kernels for
x86-64 CPUs, built with g++ on first use (``jdl.kernels.native``): the LSTM's recurrence
(``jdl.kernels.lstm_native``) and causal attention (``jdl.kernels.attention_native``). Each is
proven equal to the plain definition in its tests, and layers use one only when asked (``impl=``,
``GPTConfig(ffn_impl=, attention=)``)."""
