"""Embedding: a learned vector for each token id (the course's "embeddings" input encoding)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jdl import init as initializers
from jdl.core import Initializer, Module, Params, PRNGKey, State, check_integer, leaf, shape_struct


def embed(params: Params, ids: Any) -> jax.Array:
    """e = onehot(id) @ W = W[id]: the row of the table ``w`` that the id names.

    Gathering the row gives the one-hot product without building the one-hot vectors; its
    gradient is the one-hot product's, ∂L/∂W[v] = Σ_{p : id_p = v} ∂L/∂e_p, the upstream
    gradients scatter-added into the rows the ids name (zero for rows no id names).

    An id outside 0..V−1, negative ones included, gives a row of NaN (and no gradient): PyTorch
    raises an IndexError there, which a jitted function cannot do since it never sees the ids'
    values, and jdl prefers a loud NaN (caught by ``fit``'s on_nonfinite='stop') to
    ``jnp.take``'s wrapping of negative ids or ``w[ids]``'s silent clamping to the last row.

    Shapes: ids (...) integers, w (V, d) → e (..., d).
    """
    w = params["w"]  # (V, d)
    ids = jnp.asarray(ids)
    return w.at[ids].get(mode="fill", fill_value=jnp.nan, wrap_negative_indices=False)  # (..., d)


def Embedding(
    vocab_size: int,
    d: int,
    *,
    w_init: Initializer = initializers.variance_scaling(1.0, "fan_out", "normal"),
) -> Module:
    """A lookup table of ``vocab_size`` learned vectors of size ``d``: e = onehot(id) @ W = W[id].

    A one-hot input times a weight matrix (a ``Dense`` without bias) picks out one row of it;
    ``Embedding`` stores that matrix as ``w`` and picks the row directly (``embed``), so ids need
    no one-hot encoding. It has vocab_size·d parameters.

    The default initialization is flax's ``nn.Embed``'s: w ~ N(0, 1/d), so each embedding has
    about unit norm. PyTorch's ``nn.Embedding`` draws N(0, 1) instead:
    ``Embedding(V, d, w_init=jdl.init.normal(1.0))``. Ids outside 0..V−1 give NaN rows (see
    ``embed``); they are not checked, even outside ``jit``.

    Shapes: ids (...) integers, e.g. (B, T) → (..., d), e.g. (B, T, d). Params: ``w`` (V, d)
    float32.

    Args:
      vocab_size: V, the number of ids (a ``jdl.data.text.Vocab``'s ``size``).
      d: the size of each embedding vector.
      w_init: initializer ``(key, shape, dtype) -> array`` of the (V, d) table (``jdl.init``).

    >>> import jax, jax.numpy as jnp
    >>> layer = Embedding(10, 4)
    >>> params, state = layer.init(jax.random.key(0), jnp.zeros((2, 3), jnp.int32))
    >>> params['w'].shape, layer.apply(params, state, jnp.array([[1, 2, 3]]))[0].shape
    ((10, 4), (1, 3, 4))
    """
    for name, value in (("vocab_size", vocab_size), ("d", d)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"Embedding: {name} must be a positive int, got {value!r}")

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        check_integer("Embedding", shape_struct(x))
        return {"w": w_init(key, (vocab_size, d), jnp.float32)}, {}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False):
        del key, train
        x = jnp.asarray(x)
        check_integer("Embedding", x)
        return embed(params, x), state

    return leaf(init, apply, "embedding")
