"""Evaluation metrics: accuracy, the confusion matrix and per-class precision/recall/F1, and the
detection metrics IoU, non-maximum suppression, AP and mAP.

Classification metrics, IoU and NMS are jittable; detection matching and AP run on host numpy
arrays, since every image has its own number of boxes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def accuracy(logits: jax.Array, labels: jax.Array, where: jax.Array | None = None) -> jax.Array:
    """Fraction of examples whose arg-max class equals the label: mean_i [argmax_k z_ik = y_i].

    Shapes: logits (..., K); labels integer (...) or one-hot (..., K); ``where`` (...) masks
    padded examples out.
    """
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        if labels.shape != logits.shape:
            raise ValueError(f"accuracy: one-hot labels must have the logits' shape {logits.shape}, got {labels.shape}")
        labels = jnp.argmax(labels, axis=-1)
    if labels.shape != logits.shape[:-1]:
        raise ValueError(f"accuracy: labels must have shape {logits.shape[:-1]}, got {labels.shape}")
    correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
    if where is None:
        return jnp.mean(correct)
    return jnp.sum(correct * where) / jnp.maximum(jnp.sum(where), 1)


# --- classification: confusion matrix, precision, recall, F1 (issue 6) ---

def confusion_matrix(labels: jax.Array, predictions: jax.Array, n_classes: int) -> jax.Array:
    """C[i, j] = #{n : y_n = i and ŷ_n = j}: rows are the true class, columns the predicted one
    (scikit-learn's convention). Jittable; ``n_classes`` is static.

    Shapes: labels (N,) int, predictions (N,) int in 0..n_classes−1 → (n_classes, n_classes) int32.
    """
    labels, predictions = jnp.asarray(labels), jnp.asarray(predictions)
    if labels.shape != predictions.shape or labels.ndim != 1:
        raise ValueError(f"confusion_matrix: labels and predictions must both have shape (N,), "
                         f"got {labels.shape} and {predictions.shape}")
    return jnp.zeros((n_classes, n_classes), jnp.int32).at[labels, predictions].add(1)


def safe_divide(a: jax.Array, b: jax.Array) -> jax.Array:
    """a / b, and 0 where b = 0 (scikit-learn's ``zero_division=0``)."""
    a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
    return jnp.where(b > 0, a / jnp.where(b > 0, b, 1.0), 0.0)


def precision_recall_f1(labels: jax.Array, predictions: jax.Array, n_classes: int,
                        average: str | None = None) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Per-class precision, recall and F1 from the confusion matrix C (one class against the rest):

        TP_k = C_kk,  FP_k = Σ_i C_ik − C_kk,  FN_k = Σ_j C_kj − C_kk
        precision_k = TP_k / (TP_k + FP_k)   ("of predicted k, how many were k")
        recall_k    = TP_k / (TP_k + FN_k)   ("of true k, how many were found")
        F1_k        = 2·precision_k·recall_k / (precision_k + recall_k)

    A 0/0 counts as 0. ``average``: None (per class), 'macro' (plain mean over classes),
    'weighted' (mean weighted by support), or 'micro' (from the summed TP, FP, FN: equals accuracy
    for single-label data). As scikit-learn's ``precision_recall_fscore_support``.

    Returns (precision, recall, f1, support): each (n_classes,), or scalars when averaged
    (support then the total count).
    """
    c = confusion_matrix(labels, predictions, n_classes)
    tp = jnp.diag(c)
    predicted, support = c.sum(axis=0), c.sum(axis=1)
    if average == "micro":
        tp, predicted, support_total = tp.sum(), predicted.sum(), support.sum()
        p, r = safe_divide(tp, predicted), safe_divide(tp, support_total)
        return p, r, safe_divide(2 * p * r, p + r), support_total
    p, r = safe_divide(tp, predicted), safe_divide(tp, support)
    f1 = safe_divide(2 * p * r, p + r)
    if average is None:
        return p, r, f1, support
    if average == "macro":
        return p.mean(), r.mean(), f1.mean(), support.sum()
    if average == "weighted":
        w = support / jnp.maximum(support.sum(), 1)
        return (p * w).sum(), (r * w).sum(), (f1 * w).sum(), support.sum()
    raise ValueError(f"precision_recall_f1: average must be None, 'micro', 'macro' or 'weighted', got {average!r}")


# --- detection: IoU, non-maximum suppression, matching, AP and mAP (issue 6) ---
# Boxes are (x1, y1, x2, y2) with x1 ≤ x2, y1 ≤ y2 ("xyxy"), in continuous coordinates (area
# (x2 − x1)·(y2 − y1), no +1). IoU and NMS are jittable; matching and AP work on host numpy
# arrays, since every image has its own number of boxes.

COCO_IOU_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))  # 0.5:0.05:0.95
AP_METHODS = ("all_point", "11_point", "101_point", "step")


def box_area(boxes: jax.Array) -> jax.Array:
    """(x2 − x1)·(y2 − y1). Shapes: (..., 4) → (...)."""
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def box_iou(a: jax.Array, b: jax.Array) -> jax.Array:
    """Intersection over union of every box in ``a`` with every box in ``b``:

        IoU(A, B) = |A ∩ B| / |A ∪ B| = I / (|A| + |B| − I),
        I = max(0, min(x2ᴬ, x2ᴮ) − max(x1ᴬ, x1ᴮ)) · max(0, min(y2ᴬ, y2ᴮ) − max(y1ᴬ, y1ᴮ))

    (0 where the union is empty). Two numpy arrays are computed with numpy on the host (the
    per-image path of ``match_detections``); anything else with jax.numpy (jittable).

    Shapes: a (N, 4), b (M, 4), xyxy → (N, M) float32.
    """
    xp = np if isinstance(a, np.ndarray) and isinstance(b, np.ndarray) else jnp
    a, b = xp.asarray(a, xp.float32), xp.asarray(b, xp.float32)
    if a.ndim != 2 or a.shape[-1] != 4 or b.ndim != 2 or b.shape[-1] != 4:
        raise ValueError(f"box_iou: boxes must have shape (N, 4) and (M, 4) as x1, y1, x2, y2; "
                         f"got {a.shape} and {b.shape}")
    top_left = xp.maximum(a[:, None, :2], b[None, :, :2])  # (N, M, 2)
    bottom_right = xp.minimum(a[:, None, 2:], b[None, :, 2:])  # (N, M, 2)
    wh = xp.clip(bottom_right - top_left, 0.0, None)
    inter = wh[..., 0] * wh[..., 1]  # (N, M)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return xp.where(union > 0, inter / xp.where(union > 0, union, 1.0), 0.0).astype(xp.float32)


def nms(boxes: jax.Array, scores: jax.Array, iou_threshold: float = 0.5) -> jax.Array:
    """Greedy non-maximum suppression: visit boxes by decreasing score; keep a box unless a box
    already kept overlaps it with IoU > ``iou_threshold`` (strictly, as torchvision's ``nms``).
    Ties in score keep the lower index first. Jittable (a ``fori_loop`` over the N boxes).

    Shapes: boxes (N, 4) xyxy, scores (N,) → keep (N,) bool in the input order;
    ``jnp.flatnonzero(keep)`` gives the kept indices.
    """
    boxes, scores = jnp.asarray(boxes), jnp.asarray(scores)
    n = scores.shape[0]
    if boxes.shape != (n, 4):
        raise ValueError(f"nms: boxes must have shape (N, 4) = ({n}, 4) to match scores {scores.shape}, got {boxes.shape}")
    order = jnp.argsort(-scores, stable=True)
    iou = box_iou(boxes[order], boxes[order])  # (N, N), in visiting order
    earlier = jnp.arange(n)[None, :] < jnp.arange(n)[:, None]  # earlier[i, j]: j visited before i

    def visit(i, keep):
        suppressed = jnp.any(keep & earlier[i] & (iou[i] > iou_threshold))
        return keep.at[i].set(~suppressed)

    keep_sorted = jax.lax.fori_loop(0, n, visit, jnp.zeros(n, bool))
    return jnp.zeros(n, bool).at[order].set(keep_sorted)


def match_detections(pred_boxes, pred_scores, gt_boxes, iou_threshold=0.5) -> np.ndarray:
    """Which detections of one class in one image are true positives (COCO's greedy rule).

    Visit the detections by decreasing score; each takes the not-yet-matched ground-truth box
    it overlaps most, and is a true positive when that IoU ≥ ``iou_threshold``; otherwise (or
    when every ground truth is taken) it is a false positive — a duplicate detection of a found
    object counts as a false positive. Host-side. ``iou_threshold`` may be a 1-D array of T
    thresholds: the IoUs and the ranking are computed once and only the matching is repeated.

    Shapes: pred_boxes (N, 4), pred_scores (N,), gt_boxes (M, 4) → is_tp (N,) bool in input
    order, or (T, N) for T thresholds.
    """
    pred_boxes, gt_boxes = np.asarray(pred_boxes, np.float32).reshape(-1, 4), np.asarray(gt_boxes, np.float32).reshape(-1, 4)
    pred_scores = np.asarray(pred_scores)
    thresholds = np.atleast_1d(np.asarray(iou_threshold, np.float64))
    is_tp = np.zeros((len(thresholds), len(pred_boxes)), bool)
    if len(pred_boxes) and len(gt_boxes):
        iou = box_iou(pred_boxes, gt_boxes)  # (N, M), numpy
        order = np.argsort(-pred_scores, kind="stable")
        best = iou.max(axis=1)  # a detection below the threshold with every box can take none
        for t, threshold in enumerate(thresholds):
            taken = np.zeros(len(gt_boxes), bool)
            for i in order[best[order] >= threshold]:
                candidates = np.where(taken, -1.0, iou[i])
                j = int(np.argmax(candidates))
                if candidates[j] >= threshold:
                    is_tp[t, i], taken[j] = True, True
                    if taken.all():  # the rest are false positives
                        break
    return is_tp[0] if np.ndim(iou_threshold) == 0 else is_tp


def precision_recall_curve(scores, is_tp, n_positives: int) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall after each detection, ranked by decreasing score (stable):

        P_k = TP_k / k,   R_k = TP_k / n_positives,   TP_k = Σ_{i ≤ k} [detection i is a TP]

    ``n_positives`` counts every ground-truth object, found or not. Shapes: (N,), (N,) → (N,), (N,).
    """
    order = np.argsort(-np.asarray(scores), kind="stable")
    tp = np.cumsum(np.asarray(is_tp, bool)[order])
    k = np.arange(1, len(tp) + 1)
    return tp / k, tp / max(n_positives, 1)


def average_precision(scores, is_tp, n_positives: int, method: str = "all_point") -> float:
    """Average precision: the area under the precision–recall curve of a ranked list.

    With the interpolated precision p̂(r) = max_{R_k ≥ r} P_k (0 when no R_k ≥ r):
      'all_point' (PASCAL VOC 2010+):  AP = Σ_k (R_k − R_{k−1}) · p̂(R_k), R_0 = 0
      '11_point'  (PASCAL VOC 2007):   AP = (1/11) Σ_{r ∈ {0, 0.1, …, 1}} p̂(r)
      '101_point' (COCO):              AP = (1/101) Σ_{r ∈ {0, 0.01, …, 1}} p̂(r)
      'step'      (no interpolation):  AP = Σ_k (R_k − R_{k−1}) · P_k, scikit-learn's
                                       ``average_precision_score`` when scores are distinct.
    Returns nan when ``n_positives`` is 0 (the class is then left out of a mean).
    """
    if method not in AP_METHODS:
        raise ValueError(f"average_precision: method must be one of {AP_METHODS}, got {method!r}")
    if n_positives == 0:
        return float("nan")
    if len(is_tp) == 0:
        return 0.0
    p, r = precision_recall_curve(scores, is_tp, n_positives)
    p_hat = np.maximum.accumulate(p[::-1])[::-1]  # max over k' ≥ k: the precision envelope
    dr = np.diff(r, prepend=0.0)
    if method == "all_point":
        return float(np.sum(dr * p_hat))
    if method == "step":
        return float(np.sum(dr * p))
    levels = np.linspace(0.0, 1.0, 11 if method == "11_point" else 101)
    first = np.searchsorted(r, levels, side="left")  # first k with R_k ≥ level (R is sorted)
    return float(np.mean(np.where(first < len(r), p_hat[np.minimum(first, len(r) - 1)], 0.0)))


def class_ranking(detections, ground_truths, cls: int, iou_threshold):
    """Scores and TP flags of class ``cls``'s detections over all images, and its number of
    ground-truth objects (see ``mean_average_precision`` for the formats).

    Shapes: → scores (S,), is_tp (S,) bool — or (T, S) for a 1-D array of T IoU thresholds —
    and n_positives (int), S being the class's detections in all images.
    """
    scores, flags, n_pos = [], [], 0
    for (boxes, s, labels), (gt, gt_labels) in zip(detections, ground_truths, strict=True):
        mine, gt_mine = np.asarray(labels) == cls, np.asarray(gt_labels) == cls
        gt_c = np.asarray(gt).reshape(-1, 4)[gt_mine]
        s_c = np.asarray(s)[mine]
        flags.append(match_detections(np.asarray(boxes).reshape(-1, 4)[mine], s_c, gt_c, iou_threshold))
        scores.append(s_c)
        n_pos += len(gt_c)
    return np.concatenate(scores), np.concatenate(flags, axis=-1), n_pos


def detection_precision_recall(detections, ground_truths, n_classes: int, iou_threshold: float = 0.5,
                               score_threshold: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-class precision TP/(TP + FP) and recall TP/(TP + FN) of the detections scoring at
    least ``score_threshold``, a detection being a TP when it matches an unclaimed ground truth
    of its class with IoU ≥ ``iou_threshold`` (``match_detections``). Returns two (n_classes,)."""
    precision, recall = np.zeros(n_classes), np.zeros(n_classes)
    for c in range(n_classes):
        scores, flags, n_pos = class_ranking(detections, ground_truths, c, iou_threshold)
        kept = flags[scores >= score_threshold]
        precision[c] = kept.sum() / max(len(kept), 1)
        recall[c] = kept.sum() / max(n_pos, 1)
    return precision, recall


def mean_average_precision(detections, ground_truths, n_classes: int,
                           iou_thresholds=(0.5,), method: str = "all_point") -> dict:
    """mAP: AP (``average_precision`` with ``method``) of every class at every IoU threshold,
    averaged over the classes that have ground truth, then over the thresholds:

        mAP = (1/|T|) Σ_{t ∈ T} (1/|K|) Σ_{k ∈ K} AP_k(t)

    ``iou_thresholds=(0.5,)`` is VOC's mAP@0.5; ``COCO_IOU_THRESHOLDS`` (0.5:0.05:0.95) is COCO's
    mAP@[.5:.95] (COCO itself uses ``method='101_point'``).

    Args:
      detections: one (boxes (N, 4) xyxy, scores (N,), labels (N,)) per image.
      ground_truths: one (boxes (M, 4) xyxy, labels (M,)) per image, in the same order.
    Returns: {'map': float, 'map_per_threshold': (T,), 'ap': (T, n_classes) with nan for
      classes without ground truth, 'iou_thresholds': (T,)}.
    """
    thresholds = np.asarray(iou_thresholds, np.float64).reshape(-1)
    ap = np.full((len(thresholds), n_classes), np.nan)
    for c in range(n_classes):  # IoUs and rankings once per class; matching once per threshold
        scores, flags, n_pos = class_ranking(detections, ground_truths, c, thresholds)  # flags (T, S)
        for t in range(len(thresholds)):
            ap[t, c] = average_precision(scores, flags[t], n_pos, method)
    per_threshold = np.array([np.nanmean(row) if np.isfinite(row).any() else np.nan for row in ap])
    return {"map": float(np.mean(per_threshold)), "map_per_threshold": per_threshold, "ap": ap,
            "iou_thresholds": thresholds}


# --- language models (issue 14) ---

def bits_per_char(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Bits per character: the mean cross-entropy in bits, −(1/N) Σ_t log₂ softmax(z_t)[y_t]
    = mean CE / ln 2. A model that spreads its probability evenly over V characters scores
    log₂ V; 2^bpc is the per-character perplexity.

    Shapes: logits (..., V), integer targets (...) → a scalar.
    """
    from jdl.losses import softmax_cross_entropy

    return softmax_cross_entropy(logits, targets) / jnp.log(2.0)
