"""From dense per-box class scores to a fixed number of detections: class-wise NMS and top-D.

Every detector ends the same way: N candidate boxes per image (grid cells × boxes, anchors or
proposals), each with a score per class; for each class separately, greedy non-maximum
suppression removes a box that overlaps a higher-scoring box of the same class with IoU above
a threshold; the D best survivors above a score threshold are the detections. Class-wise NMS
is one NMS over all classes with each class's boxes moved to their own region of the plane
(torchvision's ``batched_nms`` trick): b ↦ b + label·(max coordinate + 1), so boxes of
different classes never overlap. Fixed shapes everywhere (top-k, masks), so it is jittable.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from jdl.detection.detector import Detections
from jdl.metrics import nms


@dataclass(frozen=True)
class SelectConfig:
    """Keep the ``pre_nms`` best (box, class) candidates, suppress within a class at IoU >
    ``iou_threshold``, return the ``max_detections`` best with score ≥ ``score_threshold``."""
    max_detections: int = 50
    score_threshold: float = 0.05
    iou_threshold: float = 0.5
    pre_nms: int = 200


def batched_nms(boxes: jax.Array, scores: jax.Array, labels: jax.Array, iou_threshold: float = 0.5) -> jax.Array:
    """Class-wise greedy NMS (torchvision's ``batched_nms``): ``jdl.metrics.nms`` on the boxes
    offset by label·(max coordinate + 1), so that only boxes of the same class suppress each other.
    Shapes: boxes (N, 4), scores (N,), labels (N,) int → keep (N,) bool."""
    offset = (jnp.max(boxes) + 1.0) * labels.astype(boxes.dtype)  # (N,)
    return nms(boxes + offset[:, None], scores, iou_threshold)


def select_one(boxes: jax.Array, scores: jax.Array, config: SelectConfig) -> Detections:
    """One image: candidates (box n, class c) with score s_nc; the ``pre_nms`` best go through
    class-wise NMS; the best ``max_detections`` kept with s ≥ ``score_threshold`` are returned,
    by decreasing score.
    Shapes: boxes (N, 4), scores (N, C) → Detections with boxes (D, 4), scores, labels, valid (D,)."""
    n, c = scores.shape
    flat = scores.reshape(-1)  # (N·C,), candidate k = box k // C, class k % C
    k = min(config.pre_nms, n * c)
    top, idx = jax.lax.top_k(flat, k)  # (k,)
    cand_boxes, cand_labels = boxes[idx // c], (idx % c).astype(jnp.int32)  # (k, 4), (k,)
    keep = batched_nms(cand_boxes, top, cand_labels, config.iou_threshold) & (top >= config.score_threshold)
    d = min(config.max_detections, k)
    best, order = jax.lax.top_k(jnp.where(keep, top, -jnp.inf), d)  # kept first, by score
    valid = jnp.isfinite(best)
    out = Detections(cand_boxes[order], jnp.where(valid, best, 0.0), cand_labels[order], valid)
    if d < config.max_detections:  # fewer candidates than D: pad with invalid slots
        pad = config.max_detections - d
        out = Detections(jnp.pad(out.boxes, ((0, pad), (0, 0))), jnp.pad(out.scores, (0, pad)),
                         jnp.pad(out.labels, (0, pad)), jnp.pad(out.valid, (0, pad)))
    return out


def select(boxes: jax.Array, scores: jax.Array, config: SelectConfig = SelectConfig()) -> Detections:
    """``select_one`` on every image of a batch (``jax.vmap``).
    Shapes: boxes (B, N, 4) xyxy, scores (B, N, C) (per-class, background excluded) →
    Detections (B, D, ...), D = ``config.max_detections``."""
    if boxes.ndim != 3 or boxes.shape[-1] != 4 or scores.ndim != 3 or scores.shape[:2] != boxes.shape[:2]:
        raise ValueError(f"detection.select: boxes must be (B, N, 4) and scores (B, N, C) with the same B, N; "
                         f"got {boxes.shape} and {scores.shape}")
    return jax.vmap(lambda b, s: select_one(b, s, config))(boxes, scores)
