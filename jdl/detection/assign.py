"""Assigning anchors to ground-truth boxes by IoU, and sampling a balanced minibatch of them.

Faster R-CNN labels an anchor positive when its IoU with some ground-truth box is ≥ 0.7, and
also when it is the anchor that overlaps a ground-truth box most (so that every object gets at
least one anchor); negative when its IoU with every ground-truth box is < 0.3; the rest are
ignored by the loss. SSD uses one threshold (0.5 for both). Ground truth is padded to a fixed
number of boxes with a ``valid`` mask (``jdl.data.shapes``'s batch format); padded boxes match
nothing. Everything is jittable and ``jax.vmap`` over a batch of images.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jdl.metrics import box_iou

POSITIVE, NEGATIVE, IGNORE = 1, 0, -1


def assign(anchors: jax.Array, gt_boxes: jax.Array, gt_valid: jax.Array | None = None,
           pos_threshold: float = 0.7, neg_threshold: float = 0.3,
           force_best: bool = True) -> tuple[jax.Array, jax.Array]:
    """Label each anchor from its IoUs with the valid ground-truth boxes, IoU_am = IoU(a, g_m):

        matched_a = argmax_m IoU_am,  best_a = max_m IoU_am
        label_a = 1 (positive)  if best_a ≥ pos_threshold,
                  0 (negative)  if best_a < neg_threshold,
                 −1 (ignore)    otherwise;
        with ``force_best``, for every valid g_m with max_a IoU_am > 0, each anchor attaining
        that maximum is positive and matched to g_m (the best such g_m when it is several's).

    Args:
      anchors, gt_boxes: xyxy boxes; gt_valid: which ground-truth slots hold a box (padding: False).
      pos_threshold, neg_threshold: IoU at or above which an anchor is positive, below which negative.
      force_best: make each ground truth's best anchor(s) positive.
    Returns: (matched, label).
    Shapes: anchors (A, 4), gt_boxes (M, 4) xyxy, gt_valid (M,) bool (default all) →
      matched (A,) int32 in 0..M−1 (meaningful where label = 1), label (A,) int32.
    Vectorize over a batch with ``jax.vmap(assign, in_axes=(None, 0, 0))``.
    """
    anchors, gt_boxes = jnp.asarray(anchors), jnp.asarray(gt_boxes)
    if anchors.ndim != 2 or anchors.shape[-1] != 4 or gt_boxes.ndim != 2 or gt_boxes.shape[-1] != 4:
        raise ValueError(f"assign: anchors must be (A, 4) and gt_boxes (M, 4), got {anchors.shape} and {gt_boxes.shape}")
    if neg_threshold > pos_threshold:
        raise ValueError(f"assign: neg_threshold={neg_threshold} must not exceed pos_threshold={pos_threshold}")
    gt_valid = jnp.ones(gt_boxes.shape[0], bool) if gt_valid is None else jnp.asarray(gt_valid, bool)
    if gt_valid.shape != gt_boxes.shape[:1]:
        raise ValueError(f"assign: gt_valid must have shape {gt_boxes.shape[:1]}, got {gt_valid.shape}")
    if gt_boxes.shape[0] == 0:  # no objects at all: every anchor is background
        return jnp.zeros(anchors.shape[0], jnp.int32), jnp.full(anchors.shape[0], NEGATIVE, jnp.int32)
    iou = jnp.where(gt_valid[None, :], box_iou(anchors, gt_boxes), -1.0)  # (A, M), padding never matches
    matched, best = jnp.argmax(iou, axis=1).astype(jnp.int32), jnp.max(iou, axis=1)  # (A,)
    label = jnp.where(best >= pos_threshold, POSITIVE, jnp.where(best < neg_threshold, NEGATIVE, IGNORE))
    if force_best:
        best_of_gt = jnp.max(iou, axis=0)  # (M,)
        is_best = (iou == best_of_gt[None, :]) & gt_valid[None, :] & (best_of_gt[None, :] > 0)  # (A, M)
        forced = jnp.any(is_best, axis=1)
        matched = jnp.where(forced, jnp.argmax(jnp.where(is_best, iou, -1.0), axis=1), matched)
        label = jnp.where(forced, POSITIVE, label)
    return matched.astype(jnp.int32), label.astype(jnp.int32)


def subsample(key: jax.Array, label: jax.Array, n: int = 256, positive_fraction: float = 0.5) -> jax.Array:
    """A balanced minibatch of anchors, as Faster R-CNN's RPN trains on: keep at most
    ⌊positive_fraction·n⌋ positives, chosen uniformly at random, and fill up to n with random
    negatives; every other anchor becomes −1 (ignored).

    Args:
      key: a jax.random key; label: ``assign``'s labels; n: minibatch size;
      positive_fraction: the largest share of positives.
    Shapes: label (A,) in {1, 0, −1} → (A,) with at most n entries ≥ 0. Jittable (n static).
    """
    n_pos_max = int(positive_fraction * n)
    pos, neg = label == POSITIVE, label == NEGATIVE
    u = jax.random.uniform(key, label.shape)
    # rank of each anchor among its kind in a random order: argsort of argsort of keys
    rank_pos = jnp.argsort(jnp.argsort(jnp.where(pos, u, 2.0)))
    rank_neg = jnp.argsort(jnp.argsort(jnp.where(neg, u, 2.0)))
    keep_pos = pos & (rank_pos < n_pos_max)
    n_neg = n - jnp.sum(keep_pos)
    keep_neg = neg & (rank_neg < n_neg)
    return jnp.where(keep_pos, POSITIVE, jnp.where(keep_neg, NEGATIVE, IGNORE)).astype(jnp.int32)
