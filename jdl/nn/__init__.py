"""Layers and combinators: every CamelCase name builds a ``jdl.Module``, every snake_case name
is a pure array function."""

from jdl.nn.activations import (
    PReLU, elu, gelu, leaky_relu, log_softmax, prelu, relu, sigmoid, softmax, step, tanh,
)
from jdl.nn.combinators import as_module, named, parallel, repeat, residual, serial
from jdl.nn.dropout import Dropout, dropout
from jdl.nn.embedding import Embedding, embed
from jdl.nn.linear import Dense, Flatten, dense
from jdl.nn.norm import BatchNorm, GroupNorm, InstanceNorm, LayerNorm, RMSNorm, moments, normalize, torch_momentum
from jdl.nn.conv import Conv1D, Conv2D, conv, conv1d, conv2d
from jdl.nn.conv_arithmetic import (
    batchnorm_params, conv_output_size, conv_output_size_total, conv_params, dense_params,
    receptive_field, same_padding,
)
from jdl.nn.conv_transpose import ConvTranspose2D, conv_transpose2d, conv_transpose_output_size
from jdl.nn.im2col import conv2d_im2col, im2col
from jdl.nn.pooling import (
    AvgPool1D, AvgPool2D, GlobalAvgPool, MaxPool1D, MaxPool2D, avg_pool, global_avg_pool, max_pool,
)
from jdl.nn.recurrent_cells import (
    LSTMCarry, gru_scan, gru_step, hidden_of, lstm_scan, lstm_step, project_inputs, rnn_scan, rnn_step,
    scan_steps,
)
from jdl.nn.recurrent import GRU, LSTM, RecurrentInit, SimpleRNN, recurrent_params
from jdl.nn.attention import (
    attend, attention_weights, causal_mask, dot_product_attention, masked_softmax, padding_mask,
)
from jdl.nn.multihead import (
    MultiHeadAttention, merge_heads, multi_head_attention, project_out, project_qkv, split_heads,
)
from jdl.nn.recurrent_stack import Bidirectional, StackedRNN, detach, recurrent_param_count, zero_carry
from jdl.nn.positions import LearnedPositions, SinusoidalPositions, position_ids, sinusoidal_positions
from jdl.nn.rope import rope, rope_frequencies
from jdl.nn.feedforward import FeedForward, feed_forward
from jdl.nn.transformer import DecoderBlock, TransformerBlock, residual_sublayer
from jdl.nn.transformer_stack import TransformerDecoder, TransformerEncoder
from jdl.nn import lora  # LoRA adapters: lora.LoRAConfig, init_lora, with_lora, merge, trainable_count
