"""Recurrent language models: Embedding → a stack of LSTM, GRU or vanilla RNN layers → a Dense
head on every step, and text generation that carries the recurrent state from step to step.

A language model factors the probability of a text into next-token predictions,
p(x_1..x_T) = Π_t p(x_{t+1} | x_1..x_t), and a recurrent one summarizes the prefix x_1..x_t in
its state h_t (the course's RNN/LSTM/GRU), so predicting the next token from a long prefix
costs one step, not a pass over the prefix.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from jdl.core import Module, Params, PRNGKey, State, check_integer, check_rank, fold_in, leaf, shape_struct
from jdl.kernels.lstm import embedded_lstm_sequence
from jdl.models.sampling import sample_logits
from jdl.nn.combinators import child_names
from jdl.nn.dropout import Dropout
from jdl.nn.embedding import Embedding
from jdl.nn.linear import Dense
from jdl.nn.recurrent import GRU, LSTM, SimpleRNN
from jdl.nn.recurrent_cells import LSTMCarry

KINDS = {"lstm": LSTM, "gru": GRU, "rnn": SimpleRNN}


def _check_sizes(vocab_size: int, embed: int, hidden: int, num_layers: int, dropout: float, kind: str) -> None:
    for name, value in (("vocab_size", vocab_size), ("embed", embed), ("hidden", hidden), ("num_layers", num_layers)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"lstm_lm: {name} must be a positive int, got {value!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"lstm_lm: dropout must be in [0, 1), got {dropout!r}")
    if kind not in KINDS:
        raise ValueError(f"lstm_lm: kind must be one of {', '.join(map(repr, KINDS))}, got {kind!r}")


def _cells(kind: str, hidden: int, num_layers: int, lstm_impl: str) -> tuple:
    """``num_layers`` recurrent layers of ``kind`` that return their carry; an LSTM's recurrence
    on the kernel ``lstm_impl`` names ('fused' or 'native')."""
    if lstm_impl not in ("fused", "native"):
        raise ValueError(f"lstm_lm: lstm_impl must be 'fused' or 'native', got {lstm_impl!r}")
    make = functools.partial(LSTM, impl=lstm_impl) if kind == "lstm" else KINDS[kind]
    return tuple(make(hidden, return_carry=True) for _ in range(num_layers))


def _check_carry(name: str, carry: Any, num_layers: int) -> None:
    """Raise ValueError unless ``carry`` is None or a tuple of one carry per layer."""
    if carry is not None and (not isinstance(carry, (tuple, list)) or len(carry) != num_layers):
        raise ValueError(f"{name}: carry must be a tuple of {num_layers} per-layer carries (as returned with "
                         f"return_carry=True), got {type(carry).__name__}"
                         + (f" of {len(carry)}" if isinstance(carry, (tuple, list)) else ""))


def _embedded_lstm(table: jax.Array, params: Params, ids: jax.Array, carry: LSTMCarry | None, impl: str):
    """The first LSTM layer on the ids, x_t = E[id_t] never formed: ``embedded_lstm_sequence``
    gathers x_t W_x + b from the (V, 4H) table E W_x + b. Returns (hs (B, T, H), LSTMCarry)."""
    hs, (h, c) = embedded_lstm_sequence(table, params, ids, *((None, None) if carry is None else carry), impl=impl)
    return hs, LSTMCarry(h, c)


def lstm_lm(vocab_size: int, *, embed: int = 64, hidden: int = 256, num_layers: int = 1, dropout: float = 0.0,
            kind: str = "lstm", lstm_impl: str = "fused") -> Module:
    """A recurrent language model: for ids x (B, T),

        e_t = W_e[x_t],   h_t^(1) = cell(e_t, h_{t−1}^(1)),   h_t^(l) = cell(drop(h_t^(l−1)), h_{t−1}^(l)),
        z_t = drop(h_t^(L)) W_o + b_o,   p(x_{t+1} = v | x_1..x_t) = softmax(z_t)_v,

    an ``Embedding``, ``num_layers`` recurrent layers (``kind``: 'lstm' → ``LSTM(impl=lstm_impl)``,
    'gru' → ``GRU``, 'rnn' → ``SimpleRNN``), inverted dropout p on every recurrent layer's output in
    training (the non-recurrent connections, as Zaremba et al. 2014), and a ``Dense`` head
    applied at every step. Train it with the per-token ``softmax_cross_entropy`` against the
    next characters y (B, T); ``jdl.metrics.bits_per_char`` scores it.

    For 'lstm' the recurrence runs on ``jdl.kernels.lstm``'s fused kernel (input projection
    hoisted out of the loop, hand-written BPTT), and when V < B·T the first layer gathers
    x_t W_x + b from the (V, 4H) table E W_x + b (``embedded_lstm_sequence``) instead of
    embedding the B·T ids first: the plain LSTM's numbers to float32 rounding, in less time.

    ``apply(params, state, x, *, key=None, train=False, carry=None, return_carry=False)``:
    ``carry`` is the initial state, a tuple of one carry per layer (``LSTMCarry(h, c)`` or h;
    zeros when None); ``return_carry=True`` returns (logits, final carry) instead of the logits,
    to continue from where the window ended (``generate``, truncated BPTT).

    Params: {'0_embedding': {'w'}, '1_lstm': {'w_x', 'w_h', 'b'}, …, 'L+1_dense': {'w', 'b'}}.
    Shapes: x (B, T) integer ids → logits (B, T, V).

    Args:
      vocab_size: V, the number of token ids (a ``Vocab``'s ``size``).
      embed: the embedding size.
      hidden: H, each recurrent layer's state size.
      num_layers: L, recurrent layers stacked.
      dropout: p, the drop probability on each recurrent layer's output (training only).
      kind: 'lstm', 'gru' (PyTorch's reset-after-matmul form) or 'rnn' (tanh).
      lstm_impl: for 'lstm', the kernel's recurrence: 'fused' (XLA's scans, any backend) or
        'native' (C++ scans for x86-64 CPUs, ``jdl.kernels.lstm_native``; float32, H a
        multiple of 8) — the same numbers to float32 rounding.

    >>> import jax, jax.numpy as jnp
    >>> model = lstm_lm(10, embed=4, hidden=8)
    >>> params, state = model.init(jax.random.key(0), jnp.zeros((2, 5), jnp.int32))
    >>> jax.tree.map(jnp.shape, params)['1_lstm'], model.apply(params, state, jnp.zeros((2, 5), jnp.int32))[0].shape
    ({'b': (32,), 'w_h': (8, 32), 'w_x': (4, 32)}, (2, 5, 10))
    """
    _check_sizes(vocab_size, embed, hidden, num_layers, dropout, kind)
    name = f"{kind}_lm"
    layers = (Embedding(vocab_size, embed), *_cells(kind, hidden, num_layers, lstm_impl), Dense(vocab_size))
    names, drop = child_names(layers), Dropout(dropout)

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        x = shape_struct(x)
        check_rank(name, x, (2,), "B, T")
        check_integer(name, x)
        params, h = {}, x
        for i, (n, layer) in enumerate(zip(names, layers)):
            params[n], _ = layer.init(jax.random.fold_in(key, i), h)
            h = jax.eval_shape(lambda p, h, m=layer: m.apply(p, {}, h)[0], params[n], h)
            h = h[0] if isinstance(h, tuple) else h  # a recurrent layer's (y, carry)
        return params, {}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False, carry=None, return_carry=False):
        x = jnp.asarray(x)
        check_rank(name, x, (2,), "B, T")
        _check_carry(name, carry, num_layers)
        table = kind == "lstm" and vocab_size < x.shape[0] * x.shape[1]  # E W_x: fewer FLOPs than B·T rows
        h = x if table else layers[0].apply(params[names[0]], {}, x)[0]  # the ids, or (B, T, embed)
        final = []
        for i in range(1, num_layers + 1):
            c_in = None if carry is None else carry[i - 1]
            if i == 1 and table:
                h, c = _embedded_lstm(params[names[0]]["w"], params[names[1]], x, c_in, lstm_impl)
            else:
                (h, c), _ = layers[i].apply(params[names[i]], {}, h, carry=c_in)
            h, _ = drop.apply({}, {}, h, key=fold_in(key, i), train=train)  # (B, T, H)
            final.append(c)
        B, T, H = h.shape
        logits, _ = layers[-1].apply(params[names[-1]], {}, h.reshape(B * T, H))  # (B·T, V): 2-D, fast backward
        logits = logits.reshape(B, T, vocab_size)  # (B, T, V)
        return ((logits, tuple(final)) if return_carry else logits), state

    return leaf(init, apply, name, accepts={"carry", "return_carry"})._replace(children=layers)


@functools.partial(jax.jit, static_argnames=("model", "n"))
def _generate(model: Module, params: Params, prompt: jax.Array, n: int, key: PRNGKey, temperature: Any) -> jax.Array:
    """The jitted body of ``generate`` for a (B, P) prompt → (B, n)."""
    (logits, carry), _ = model.apply(params, {}, prompt, return_carry=True)  # (B, P, V)

    def step(state, i):
        z, carry = state  # z (B, V): the logits of the next token
        token = sample_logits(jax.random.fold_in(key, i), z, temperature)  # (B,)
        (z, carry), _ = model.apply(params, {}, token[:, None], carry=carry, return_carry=True)  # z (B, 1, V)
        return (z[:, 0], carry), token

    _, tokens = jax.lax.scan(step, (logits[:, -1], carry), jnp.arange(n))  # (n, B)
    return tokens.T  # (B, n)


def generate(model: Module, params: Params, prompt_ids: Any, n: int, key: PRNGKey,
             temperature: Any = 1.0) -> jax.Array:
    """Continue ``prompt_ids`` by ``n`` tokens drawn one at a time from a recurrent LM:

        (z, s) = model(prompt);   for i = 0..n−1:  y_i ~ softmax(z/τ);  (z, s) = model(y_i, s)

    The prompt is read once; each new token is one step of the recurrence from the carried
    state s, so n tokens cost n steps (recomputing the prefix each time would cost O(n²)). Step
    i draws with ``jax.random.fold_in(key, i)`` (``sample_logits``); τ = 0 is greedy decoding.
    One ``lax.scan`` under one ``jit``: compiled once per (model, prompt shape, n); τ is traced.

    Shapes: prompt_ids (B, P) or (P,) integers, P ≥ 1 → (B, n) or (n,) int32.

    Args:
      model: a language model whose ``apply`` takes ``carry=`` and ``return_carry=`` (``lstm_lm``).
      params: its params.
      prompt_ids: the prompt's token ids.
      n: how many tokens to generate.
      key: a ``jax.random`` key.
      temperature: τ ≥ 0.
    """
    if not {"carry", "return_carry"} <= model.accepts:
        raise TypeError(f"generate: the model '{model.name}' does not carry a recurrent state (its apply must "
                        "take carry= and return_carry=, as lstm_lm's does)")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"generate: n must be an int >= 0, got {n!r}")
    prompt = jnp.asarray(prompt_ids)
    if prompt.ndim not in (1, 2) or prompt.shape[-1] < 1:
        raise ValueError(f"generate: prompt_ids must be (B, P) or (P,) with P >= 1, got shape {prompt.shape}")
    check_integer("generate", prompt)
    if isinstance(temperature, (int, float)) and not temperature >= 0:
        raise ValueError(f"generate: temperature must be >= 0 (0 is greedy), got {temperature!r}")
    tokens = _generate(model, params, prompt if prompt.ndim == 2 else prompt[None], n, key,
                       jnp.asarray(temperature, jnp.float32))
    return tokens if prompt.ndim == 2 else tokens[0]
