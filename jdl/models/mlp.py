"""The multilayer perceptron."""

from __future__ import annotations

from typing import Callable, Sequence

import jax

from jdl import init as initializers
from jdl.core import Initializer, Module
from jdl.nn.activations import relu
from jdl.nn.combinators import serial
from jdl.nn.dropout import Dropout
from jdl.nn.linear import Dense, Flatten
from jdl.nn.norm import BatchNorm, LayerNorm

NORMS = {"batch": BatchNorm, "layer": LayerNorm}


def mlp(
    features: Sequence[int],
    activation: Callable[[jax.Array], jax.Array] = relu,
    output_activation: Callable[[jax.Array], jax.Array] | None = None,
    w_init: Initializer = initializers.lecun_normal,
    flatten: bool = True,
    norm: str | Callable[[], Module] | None = None,
    dropout: float = 0.0,
) -> Module:
    """A multilayer perceptron: a_0 = flatten(x), a_l = φ(a_{l−1} W_l + b_l), output
    a_L = a_{L−1} W_L + b_L (logits, unless ``output_activation`` is given).

    ``features`` lists the output size of every Dense layer, the last being the number of
    outputs: ``mlp([1024, 512, 3])`` on 2 inputs has (2·1024+1024) + (1024·512+512) +
    (512·3+3) = 529,411 parameters.

    Regularized and normalized variants: every hidden layer becomes
    Dense → norm → φ → Dropout(p), with ``norm`` 'batch' (``BatchNorm``; its Dense then has no
    bias, which BatchNorm's β makes redundant), 'layer' (``LayerNorm``) or a function returning
    a norm layer (``lambda: GroupNorm(8)``), and ``dropout`` = p.

    Shapes: x (B, ...) → (B, features[-1]) (with ``flatten=False``, x (..., d_in) → (..., d_out)).
    """
    features = list(features)
    if not features or any(not isinstance(f, int) or f < 1 for f in features):
        raise ValueError(f"mlp: features must be a non-empty list of positive ints, got {features}")
    if not callable(norm) and norm not in (None, "none", *NORMS):
        raise ValueError(f"mlp: norm must be None, 'none', 'batch', 'layer' or a function returning "
                         f"a norm layer, got {norm!r}")
    norm = None if norm == "none" else norm
    make_norm = NORMS.get(norm) if isinstance(norm, str) else norm
    layers: list = [Flatten()] if flatten else []
    for i, f in enumerate(features):
        hidden = i < len(features) - 1
        layers.append(Dense(f, use_bias=not (hidden and make_norm is BatchNorm), w_init=w_init))
        if hidden:
            if make_norm is not None:
                layers.append(make_norm())
            layers.append(activation)
            if dropout:
                layers.append(Dropout(dropout))
        elif output_activation is not None:
            layers.append(output_activation)
    return serial(*layers)
