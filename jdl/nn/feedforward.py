"""The Transformer's position-wise feed-forward network: two Dense layers with a ReLU or GELU
between them, applied to every token on its own (the course's Transformer block, step 2)."""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import jax

from jdl.core import Module, Params, PRNGKey, State, check_features, check_float, check_key, leaf, shape_struct
from jdl.nn.activations import gelu, relu
from jdl.nn.dropout import _check_p, dropout as dropout_fn
from jdl.nn.linear import Dense, dense

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": relu,
    "gelu": gelu,  # exact, z·Φ(z): PyTorch's activation="gelu"
    "gelu_tanh": functools.partial(gelu, approximate=True),  # GPT-2's tanh approximation
}


def activation_fn(layer: str, activation: str | Callable[[jax.Array], jax.Array]) -> Callable:
    """The activation φ named by ``activation`` ('relu', 'gelu', 'gelu_tanh') or the function
    itself; a ``ValueError`` naming ``layer`` for an unknown name."""
    if callable(activation):
        return activation
    if activation not in ACTIVATIONS:
        raise ValueError(f"{layer}: activation must be one of {sorted(ACTIVATIONS)} or a function, "
                         f"got {activation!r}")
    return ACTIVATIONS[activation]


FFN_IMPLS = ("xla", "xt")


def feed_forward(params: Params, x: jax.Array, phi: Callable[[jax.Array], jax.Array] = gelu, *,
                 p: float = 0.0, key: PRNGKey | None = None, impl: str = "xla") -> jax.Array:
    """FFN(x) = φ(x W_1 + b_1) W_2 + b_2, the same two-layer network at every position, with
    inverted dropout of probability ``p`` on the hidden activations when ``key`` is given (as
    PyTorch's ``TransformerEncoderLayer``).

    The tokens are flattened to a (B·T, d_model) matrix once around both matmuls, which XLA:CPU
    differentiates fastest. ``impl='xt'`` computes the same two Dense layers with
    ``jdl.kernels.dense.dense_xt``, whose weight gradients XLA:CPU runs as plain matmuls
    (same values to rounding); 'xla' (default) with ``jdl.nn.dense``.

    Shapes: x (..., d_model), fc1.w (d_model, d_ff), fc2.w (d_ff, d_model) → (..., d_model).
    """
    if impl not in FFN_IMPLS:
        raise ValueError(f"feed_forward: impl must be one of {FFN_IMPLS}, got {impl!r}")
    if impl == "xt":
        from jdl.kernels.dense import dense_xt as linear  # jdl.kernels builds on jdl.nn
    else:
        linear = dense
    lead, d_model = x.shape[:-1], x.shape[-1]
    h = x.reshape(math.prod(lead), d_model)  # (B·T, d_model)
    h = phi(linear(params["fc1"], h))  # (B·T, d_ff)
    if p and key is not None:
        h = dropout_fn(key, h, p)
    y = linear(params["fc2"], h)  # (B·T, d_out)
    return y.reshape(*lead, y.shape[-1])  # (..., d_out)


def FeedForward(d_ff: int, activation: str | Callable[[jax.Array], jax.Array] = "gelu",
                dropout: float = 0.0) -> Module:
    """The position-wise feed-forward network: FFN(x) = φ(x W_1 + b_1) W_2 + b_2.

    The course's Pre-LN sheet writes it ReLU(x W^{1,l} + b^{1,l}) W^{2,l} + b^{2,l}; the original
    Transformer uses ReLU with d_ff = 4·d_model (2048 for d_model = 512), GPT-2 and BERT GELU.
    The output width equals the input's d_model, so the block can add it back to x.
    It has 2·d_model·d_ff + d_ff + d_model parameters.

    Shapes: x (..., d_model) → (..., d_model). Params: ``fc1`` {w (d_model, d_ff), b (d_ff,)},
    ``fc2`` {w (d_ff, d_model), b (d_model,)}; LeCun-normal weights and zero biases, as
    ``Dense``.

    Args:
      d_ff: the hidden width.
      activation: 'gelu' (exact, PyTorch's), 'gelu_tanh' (GPT-2's), 'relu', or a function.
      dropout: the drop probability of the hidden activations when ``train=True``.
    """
    if not isinstance(d_ff, int) or d_ff < 1:
        raise ValueError(f"FeedForward: d_ff must be a positive int, got {d_ff!r}")
    phi = activation_fn("FeedForward", activation)
    _check_p("FeedForward", dropout)

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        x = shape_struct(x)
        if x.ndim < 1:
            raise ValueError("FeedForward: expected an input of shape (..., d_model), got a scalar")
        check_float("FeedForward", x)
        k1, k2 = jax.random.split(key)
        hidden = jax.ShapeDtypeStruct((*x.shape[:-1], d_ff), x.dtype)
        return {"fc1": Dense(d_ff).init(k1, x)[0], "fc2": Dense(x.shape[-1]).init(k2, hidden)[0]}, {}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False):
        check_features("FeedForward", x, params["fc1"]["w"].shape[0], what="d_model")
        p = dropout if train else 0.0
        if p:
            check_key("FeedForward", key, train)
        return feed_forward(params, x, phi, p=p, key=key if p else None), state

    return leaf(init, apply, "feed_forward")
