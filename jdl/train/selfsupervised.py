"""Self-supervised objectives as ``make_step`` loss functions, on batches of unlabelled inputs x:
SimCLR (two augmented views of each example, NT-Xent between their projections) and rotation
prediction (a 4-way classification of which multiple of 90° an image was turned by, Gidaris
et al., 2018), with ``pretrain``, the epoch loop that feeds them, and ``encode``, the frozen
features a linear probe (``jdl.train.probe``) reads.

The labels are the data themselves: an encoder that must match two crops of one digit among
all the others, or tell which way up a digit stands, has to learn what digits look like.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jdl.contrastive import nt_xent, positive_pair_accuracy
from jdl.core import Module
from jdl.data.batching import epoch_order, num_batches
from jdl.losses import softmax_cross_entropy
from jdl.train.state import TrainState
from jdl.train.supervised import supervised

Augment = Callable[[jax.Array, jax.Array], jax.Array]  # augment(key, x_b) -> x_b'


def simclr(model: Module, augment: Augment, temperature: float = 0.5) -> Callable:
    """SimCLR's objective (Chen et al., 2020) as ``loss_fn(params, state, x, key)``:

        x̃¹ = t¹(x), x̃² = t²(x)   two independent draws of the augmentation (k₁, k₂ from key)
        z = g(f([x̃¹; x̃²]))       ``model`` = serial(encoder f, projection head g), one pass
        ℓ = NT-Xent(z[:B], z[B:], τ)

    Both views go through the model in one batch of 2B, so a BatchNorm sees them together.
    ``metrics['positive_accuracy']`` is the share of views whose nearest view is their positive.

    Shapes: x (B, ...) as ``augment`` and the model take; the model's output (2B, D).
    """

    def loss_fn(params: Any, state: Any, x: jax.Array, key: jax.Array):
        k1, k2, k_model = jax.random.split(key, 3)
        views = jnp.concatenate([augment(k1, x), augment(k2, x)])  # (2B, ...)
        z, new_state = model.apply(params, state, views, key=k_model, train=True)  # (2B, D)
        z1, z2 = z[:x.shape[0]], z[x.shape[0]:]
        return nt_xent(z1, z2, temperature), (new_state, {"positive_accuracy": positive_pair_accuracy(z1, z2)})

    return loss_fn


def rotations(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Every image turned by 0°, 90°, 180° and 270° counter-clockwise (``np.rot90`` k times in
    the (H, W) plane), with the label k of each turn.

    Shapes: x (B, H, W, C) with H = W → images (4B, H, W, C) in blocks of k, labels (4B,) int32.
    """
    if x.ndim != 4 or x.shape[1] != x.shape[2]:
        raise ValueError(f"rotations: expected square images (B, H, W, C) with H = W, got shape {tuple(x.shape)}")
    turned = jnp.concatenate([jnp.rot90(x, k, axes=(1, 2)) for k in range(4)])  # (4B, H, W, C)
    return turned, jnp.repeat(jnp.arange(4, dtype=jnp.int32), x.shape[0])


def rotation_prediction(model: Module, augment: Augment | None = None) -> Callable:
    """The rotation pretext task (Gidaris et al., 2018) as ``loss_fn(params, state, x, key)``:
    each (augmented) image in all four turns, and ``model`` = serial(encoder, a 4-way head)
    trained to name the turn with softmax cross-entropy: ``supervised`` on ``rotations(x)``.

    Shapes: x (B, H, W, C) square images; the model's output (4B, 4).
    """
    objective = supervised(model, softmax_cross_entropy)

    def loss_fn(params: Any, state: Any, x: jax.Array, key: jax.Array):
        k_aug, k_model = jax.random.split(key)
        if augment is not None:
            x = augment(k_aug, x)
        return objective(params, state, rotations(x), k_model)

    return loss_fn


def pretrain(step: Callable, ts: TrainState, x: np.ndarray, epochs: int, batch_size: int,
             seed: int = 0) -> tuple[TrainState, list[dict]]:
    """Run ``step`` (``make_step`` on a self-supervised loss) over ``epochs`` passes of the
    unlabelled x, in the seeded order of ``jdl.data.epoch_order`` (the last, smaller batch
    dropped); returns the final state and one record per epoch, the means of the step's
    metrics (``train_<name>``).

    Shapes: x (N, ...); each batch (batch_size, ...).
    """
    if not 1 <= batch_size <= len(x):
        raise ValueError(f"pretrain: batch_size must lie in [1, {len(x)}] (the examples), got {batch_size}")
    history = []
    for epoch in range(epochs):
        order, metrics = epoch_order(len(x), seed, epoch), []
        for b in range(num_batches(len(x), batch_size)):
            ts, m = step(ts, jnp.asarray(x[order[b * batch_size:(b + 1) * batch_size]]))
            metrics.append(m)
        metrics = jax.device_get(metrics)
        history.append({"epoch": epoch + 1, **{f"train_{k}": float(np.mean([m[k] for m in metrics]))
                                               for k in metrics[0]}})
    return ts, history


def encode(encoder: Module, params: Any, state: Any, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """The frozen encoder's features f(x) in evaluation mode (``train=False``), in batches of
    ``batch_size`` (the last one, or a smaller set, padded with zeros), so that one compiled
    program serves every call with the same encoder, whatever the params and the set's size.

    Shapes: x (N, ...) → (N, D) (flattened after the batch axis).
    """
    apply = jax.jit(encoder.apply, static_argnames=("train",))
    out = []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        padded = np.concatenate([xb, np.zeros((batch_size - len(xb), *x.shape[1:]), x.dtype)])
        out.append(np.asarray(apply(params, state, jnp.asarray(padded), train=False)[0])[:len(xb)])
    return np.concatenate(out).reshape(len(x), -1)
