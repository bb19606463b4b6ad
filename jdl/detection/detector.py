"""The one interface every detector in ``jdl.detection`` follows, so that one training loop, one
evaluation (``jdl.metrics.mean_average_precision``) and one experiment serve them all.

A detector is three pure functions over an ``(params, state)`` pair, like a ``Module``:

    init(key, images)                         -> (params, state)
    loss(params, state, images, targets, key) -> (loss, (state, metrics))
    predict(params, state, images)            -> Detections(boxes, scores, labels, valid)

``images`` are (B, H, W, 3) float32 in [0, 1]; ``targets`` is the dict of
``jdl.data.shapes.as_arrays`` — boxes (B, K, 4) xyxy in pixels, labels (B, K) int32 (−1 where
padded), valid (B, K) bool. ``loss`` is differentiable in ``params`` (``jax.value_and_grad(...,
has_aux=True)``) and jittable; ``key`` drives any sampling (anchor subsampling, proposals).
``predict`` is jittable with fixed output shapes: at most D detections per image, ``valid``
marking the real ones after score thresholding and NMS.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import numpy as np


class Detections(NamedTuple):
    """Fixed-size detections per image: boxes (B, D, 4) xyxy, scores (B, D), labels (B, D) int32,
    valid (B, D) bool."""
    boxes: jax.Array
    scores: jax.Array
    labels: jax.Array
    valid: jax.Array


class Detector(NamedTuple):
    """``init``, ``loss`` and ``predict`` as in the module docstring; ``name`` for tables."""
    name: str
    init: Callable
    loss: Callable
    predict: Callable


def as_metric_input(detections: Detections) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Fixed-size ``Detections`` → one (boxes (n_i, 4), scores (n_i,), labels (n_i,)) per image,
    the ``detections`` argument of ``jdl.metrics.mean_average_precision``."""
    boxes, scores, labels, valid = (np.asarray(a) for a in detections)
    return [(b[v], s[v], c[v]) for b, s, c, v in zip(boxes, scores, labels, valid)]
