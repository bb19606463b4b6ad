"""Where a detector fails: which ground-truth objects it finds, and its recall by object size and
by overlap with other objects (small and overlapping objects are the hard cases)."""

from __future__ import annotations

import numpy as np

from jdl.metrics import box_iou

SIZE_BINS = (("small (<10 px)", 0.0, 10.0), ("medium (10-18 px)", 10.0, 18.0), ("large (>=18 px)", 18.0, np.inf))


def found_objects(detections, ground_truths, iou_threshold: float = 0.5, score_threshold: float = 0.3) -> list:
    """For each image, which ground-truth objects some detection of the same class with score ≥
    ``score_threshold`` overlaps with IoU ≥ ``iou_threshold`` (``jdl.metrics.match_detections``'
    greedy rule by decreasing score). Formats as ``mean_average_precision``; returns one (M_i,) bool per image."""
    out = []
    for (boxes, scores, labels), (gt, gt_labels) in zip(detections, ground_truths, strict=True):
        found = np.zeros(len(gt), bool)
        keep = np.asarray(scores) >= score_threshold
        for c in np.unique(gt_labels):
            mine, gt_mine = keep & (np.asarray(labels) == c), np.flatnonzero(np.asarray(gt_labels) == c)
            if not mine.any():
                continue
            iou = box_iou(np.asarray(boxes, np.float32)[mine], np.asarray(gt, np.float32)[gt_mine])  # (n, m)
            order = np.argsort(-np.asarray(scores)[mine], kind="stable")
            taken = np.zeros(len(gt_mine), bool)
            for i in order:
                cand = np.where(taken, -1.0, iou[i])
                j = int(np.argmax(cand))
                if cand[j] >= iou_threshold:
                    taken[j] = True
            found[gt_mine] = taken
        out.append(found)
    return out


def recall_by_group(found: list, ground_truths) -> dict:
    """Recall (found / all) of the objects in each size bin (the box's longer side) and of the
    objects that overlap another object of their image (IoU > 0) versus those that do not."""
    sizes, overlapping, hit = [], [], []
    for f, (gt, _) in zip(found, ground_truths):
        gt = np.asarray(gt, np.float32).reshape(-1, 4)
        sizes.append(np.maximum(gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]))
        iou = box_iou(gt, gt) - np.eye(len(gt), dtype=np.float32)
        overlapping.append((iou > 0).any(axis=1) if len(gt) else np.zeros(0, bool))
        hit.append(f)
    sizes, overlapping, hit = (np.concatenate(a) for a in (sizes, overlapping, hit))
    groups = {name: (sizes >= lo) & (sizes < hi) for name, lo, hi in SIZE_BINS}
    groups.update({"overlapping": overlapping, "isolated": ~overlapping, "all": np.ones_like(hit)})
    return {name: {"objects": int(m.sum()), "recall": float(hit[m].mean()) if m.any() else float("nan")}
            for name, m in groups.items()}
