"""Candidates that each carry their own box and class — a sliding window's best class, one
proposal's box for class c, an unlabelled proposal — to fixed-size ``Detections``, through
``jdl.detection.postprocess.select`` (top-k, class-wise NMS, top-D)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jdl.detection.detector import Detections
from jdl.detection.postprocess import SelectConfig, select


def select_labelled(boxes: jax.Array, scores: jax.Array, labels: jax.Array, n_classes: int, max_detections: int,
                    iou_threshold: float = 0.5, score_threshold: float | None = 0.05,
                    pre_nms_top_k: int | None = None) -> Detections:
    """``postprocess.select`` for candidates with one class each: the per-class score table is

        s_nc = s_n if c = label_n else −∞,

    so candidate n competes only as its own class. ``score_threshold=None`` thresholds nothing
    (objectness logits); a −∞ score is never a detection. ``pre_nms_top_k=None``: all N.

    Shapes: boxes (B, N, 4), scores (B, N), labels (B, N) int in 0..n_classes−1 →
      Detections (B, D, ...), D = max_detections.
    """
    if scores.ndim != 2 or labels.shape != scores.shape:
        raise ValueError(f"select_labelled: scores and labels must both be (B, N), got {scores.shape} and {labels.shape}")
    table = jnp.where(jax.nn.one_hot(labels, n_classes, dtype=bool), scores[..., None], -jnp.inf)  # (B, N, C)
    config = SelectConfig(max_detections, -jnp.inf if score_threshold is None else score_threshold, iou_threshold,
                          scores.shape[1] if pre_nms_top_k is None else pre_nms_top_k)
    return select(boxes, table, config)
