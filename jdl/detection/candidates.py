"""From labelled candidate boxes to fixed-size ``Detections``: top-k, per-class NMS, top-D.

Every detector ends the same way — many scored boxes per image (windows, proposals × classes,
each candidate with its own box and class) become at most D detections: drop those under a score threshold, keep the k best,
suppress per class with greedy NMS (``jdl.metrics.nms``), keep the D best survivors. All shapes
are fixed so it jits; ``valid`` marks the real detections.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jdl.detection.detector import Detections
from jdl.metrics import nms


def select_labelled_one(boxes: jax.Array, scores: jax.Array, labels: jax.Array, max_detections: int,
               iou_threshold: float = 0.5, score_threshold: float | None = 0.05,
               pre_nms_top_k: int | None = None) -> Detections:
    """One image's detections: with s_n the score of candidate n,

        keep = top-D by s of NMS_per-class(top-k by s of {n : s_n > score_threshold})

    Per-class NMS is one NMS over boxes shifted by label·(1 + max coordinate) (boxes of different
    classes then never overlap), torchvision's ``batched_nms`` trick. ``score_threshold=None``
    thresholds nothing (proposals: every box may survive); padding slots have ``valid`` False.

    Args:
      boxes: candidate boxes xyxy; scores: their scores (any real, −∞ never valid); labels: classes.
      max_detections: D; iou_threshold: NMS's; pre_nms_top_k: k (None: all candidates).
    Shapes: boxes (N, 4), scores (N,), labels (N,) int → Detections with boxes (D, 4), scores (D,),
      labels (D,), valid (D,).
    """
    n = scores.shape[0]
    if boxes.shape != (n, 4) or labels.shape != (n,):
        raise ValueError(f"select_labelled_one: boxes must be (N, 4) and labels (N,) for N={n} scores, "
                         f"got {boxes.shape} and {labels.shape}")
    ok = jnp.isfinite(scores) if score_threshold is None else scores > score_threshold  # (N,)
    scores = jnp.where(ok, scores, -jnp.inf)
    k = n if pre_nms_top_k is None else min(pre_nms_top_k, n)
    top_scores, idx = jax.lax.top_k(scores, k)  # (k,)
    top_boxes, top_labels = boxes[idx], labels[idx]
    shift = (jnp.max(jnp.abs(jax.lax.stop_gradient(top_boxes))) + 1.0) * top_labels.astype(boxes.dtype)
    keep = nms(jax.lax.stop_gradient(top_boxes) + shift[:, None], top_scores, iou_threshold)  # (k,)
    keep = keep & jnp.isfinite(top_scores)
    d = min(max_detections, k)
    final_scores, order = jax.lax.top_k(jnp.where(keep, top_scores, -jnp.inf), d)  # (d,)
    valid = jnp.isfinite(final_scores)
    out = Detections(top_boxes[order], jnp.where(valid, final_scores, 0.0), top_labels[order].astype(jnp.int32),
                     valid)
    if d < max_detections:  # fewer candidates than slots: pad
        pad = max_detections - d
        out = Detections(jnp.pad(out.boxes, ((0, pad), (0, 0))), jnp.pad(out.scores, (0, pad)),
                         jnp.pad(out.labels, (0, pad)), jnp.pad(out.valid, (0, pad)))
    return out


def select_labelled(boxes: jax.Array, scores: jax.Array, labels: jax.Array, max_detections: int,
           iou_threshold: float = 0.5, score_threshold: float | None = 0.05,
           pre_nms_top_k: int | None = None) -> Detections:
    """``select_labelled_one`` on every image of a batch (``jax.vmap``).

    Shapes: boxes (B, N, 4), scores (B, N), labels (B, N) → Detections (B, D, ...).
    """
    if boxes.ndim != 3 or scores.ndim != 2:
        raise ValueError(f"select_labelled: boxes must be (B, N, 4) and scores (B, N), got {boxes.shape} and {scores.shape}")
    return jax.vmap(lambda b, s, c: select_labelled_one(b, s, c, max_detections, iou_threshold, score_threshold,
                                                        pre_nms_top_k))(boxes, scores, labels)
