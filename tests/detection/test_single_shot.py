"""YOLO and SSD heads: target encoding, losses against hand-computed values and loop references,
hard-negative mining, and decoding of a perfect head output back to the ground truth."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.detection import assign, encode
from jdl.detection.backbone import BackboneConfig
from jdl.detection.postprocess import SelectConfig
from jdl.detection.ssd import SSDConfig, WEIGHTS, hard_negatives, ssd_anchors, ssd_detections, ssd_loss
from jdl.detection.yolo import (YOLOConfig, activate, grid_size, paired_iou, yolo_boxes, yolo_detections, yolo_loss,
                                yolo_targets)
from jdl.metrics import box_iou

# four objects whose centres fall in different cells of the 8×8 grid (cell side 8 px)
BOXES = np.array([[3.0, 5.0, 10.0, 12.0], [20.0, 30.0, 48.0, 58.0], [40.0, 2.0, 52.0, 15.0],
                  [0.0, 44.0, 9.0, 64.0], [0, 0, 0, 0], [0, 0, 0, 0]], np.float32)
LABELS = np.array([0, 3, 1, 2, -1, -1], np.int32)
VALID = np.array([True, True, True, True, False, False])


def test_yolo_targets_round_trip_and_cells():
    t = jax.jit(yolo_targets, static_argnums=(3, 4))(jnp.asarray(BOXES), jnp.asarray(LABELS), jnp.asarray(VALID), 8, 64.0)
    obj = np.asarray(t["obj"])
    expected_cells = [int((b[1] + b[3]) / 2 // 8) * 8 + int((b[0] + b[2]) / 2 // 8) for b in BOXES[:4]]
    assert sorted(np.flatnonzero(obj)) == sorted(expected_cells)  # (1, 0), (5, 4), (1, 5), (6, 0)
    coords = np.asarray(t["coords"])
    # object 1: centre (34, 44) → cell (5, 4), offsets (34/8 − 4, 44/8 − 5) = (0.25, 0.5), √(28/64)
    np.testing.assert_allclose(coords[5 * 8 + 4], [0.25, 0.5, math.sqrt(28 / 64), math.sqrt(28 / 64)], rtol=1e-6)
    back = np.asarray(yolo_boxes(t["coords"][:, None], 8, 64.0))[:, 0]
    for k, cell in enumerate(expected_cells):
        np.testing.assert_allclose(back[cell], BOXES[k], atol=1e-4)
        assert int(t["label"][cell]) == LABELS[k]
    # two centres in cell (1, 0) = cell 8: the first box keeps the cell
    pair = jnp.asarray([[3.0, 5.0, 10.0, 12.0], [1.0, 6.0, 9.0, 14.0]])
    two_in_one = yolo_targets(pair, jnp.asarray([1, 2]), jnp.ones(2, bool), 8, 64.0)
    assert np.flatnonzero(two_in_one["obj"]).tolist() == [8] and int(two_in_one["label"][8]) == 1
    np.testing.assert_allclose(two_in_one["box"][8], pair[0])


def _yolo_loss_loops(coords, conf, probs, boxes, labels, valid, lc, ln, grid=2, size=16.0):
    """YOLO v1's loss written with loops over cells and predictors (numpy, float64)."""
    s, total = size / grid, 0.0
    n, cells, b, _ = coords.shape
    for i in range(n):
        owner = {}
        for k in range(len(boxes[i])):
            if valid[i][k]:
                cx, cy = (boxes[i][k][0] + boxes[i][k][2]) / 2, (boxes[i][k][1] + boxes[i][k][3]) / 2
                owner.setdefault(int(cy // s) * grid + int(cx // s), k)
        for c in range(cells):
            resp = -1
            if c in owner:
                g = boxes[i][owner[c]]
                pred = []
                for j in range(b):
                    x, y, sw, sh = coords[i, c, j]
                    cx, cy, w, h = (c % grid + x) * s, (c // grid + y) * s, sw ** 2 * size, sh ** 2 * size
                    pred.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
                ious = np.asarray(box_iou(np.asarray(pred, np.float32), np.asarray(g, np.float32)[None]))[:, 0]
                resp = int(np.argmax(ious))
                gx, gy = (g[0] + g[2]) / 2 / s - c % grid, (g[1] + g[3]) / 2 / s - c // grid
                target = [gx, gy, math.sqrt((g[2] - g[0]) / size), math.sqrt((g[3] - g[1]) / size)]
                total += lc * np.sum((coords[i, c, resp] - target) ** 2) + (ious[resp] - conf[i, c, resp]) ** 2
                total += np.sum((probs[i, c] - np.eye(probs.shape[-1])[labels[i][owner[c]]]) ** 2)
            total += ln * sum(conf[i, c, j] ** 2 for j in range(b) if j != resp)
    return total / n


def test_yolo_loss_equals_loop_reference():
    config = YOLOConfig(backbone=BackboneConfig((4, 4, 4)), level=2, image_size=16)  # stride 8 → 2×2 grid
    assert grid_size(config) == 2
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(2, 2, 2, 2 * 5 + 3)).astype(np.float32)
    coords, conf, probs = (np.asarray(a, np.float64) for a in activate(jnp.asarray(raw), 3, 2))
    boxes = np.array([[[1, 2, 7, 6], [9, 9, 15, 16], [2, 1, 5, 4]], [[4, 4, 12, 12], [0, 0, 0, 0], [0, 0, 0, 0]]],
                     np.float32)  # image 0: boxes 0 and 2 share cell 0 — box 0 owns it
    labels, valid = np.array([[2, 0, 1], [1, -1, -1]]), np.array([[1, 1, 1], [1, 0, 0]], bool)
    targets = {"boxes": jnp.asarray(boxes), "labels": jnp.asarray(labels), "valid": jnp.asarray(valid)}
    loss, metrics = jax.jit(lambda *a: yolo_loss(*a, targets, config))(
        *(jnp.asarray(a, jnp.float32) for a in (coords, conf, probs)))
    expected = _yolo_loss_loops(coords, conf, probs, boxes, labels, valid, 5.0, 0.5)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    assert set(metrics) >= {"coord_loss", "obj_loss", "noobj_loss", "class_loss"}


SMALL = SelectConfig(max_detections=12, pre_nms=40)  # fewer NMS candidates: a faster compile


def test_yolo_perfect_head_decodes_to_ground_truth():
    config = YOLOConfig(select=SMALL)
    t = yolo_targets(jnp.asarray(BOXES), jnp.asarray(LABELS), jnp.asarray(VALID), 8, 64.0)
    resp = jnp.zeros((64, 2), bool).at[:, 0].set(t["obj"])  # predictor 0 of each object's cell
    coords = jnp.where(resp[..., None], t["coords"][:, None], 0.5)[None]  # (1, 64, 2, 4)
    conf = resp.astype(jnp.float32)[None]
    probs = jnp.where(t["obj"][:, None], jax.nn.one_hot(t["label"], 4), 0.25)[None]
    det = jax.jit(lambda *a: yolo_detections(*a, config))(coords, conf, probs)
    assert det.boxes.shape == (1, config.select.max_detections, 4)
    found = np.asarray(det.valid[0])
    assert found.sum() == 4
    got = sorted(zip(np.asarray(det.labels[0])[found].tolist(), np.asarray(det.boxes[0])[found].round(3).tolist()))
    want = sorted(zip(LABELS[:4].tolist(), BOXES[:4].tolist()))
    for (lg, bg), (lw, bw) in zip(got, want):
        assert lg == lw
        np.testing.assert_allclose(bg, bw, atol=1e-3)


def test_hard_negatives_pick_the_top_losses():
    rng = np.random.default_rng(1)
    loss = rng.uniform(size=(3, 12)).astype(np.float32)
    negative = rng.uniform(size=(3, 12)) < 0.7
    n_keep = np.array([2, 0, 20])
    got = np.asarray(hard_negatives(jnp.asarray(loss), jnp.asarray(negative), jnp.asarray(n_keep)))
    for i in range(3):
        negs = np.flatnonzero(negative[i])
        top = negs[np.argsort(-loss[i, negs])][:n_keep[i]]
        assert set(np.flatnonzero(got[i])) == set(top.tolist())


def _log_softmax(z):
    z = np.asarray(z, np.float64)
    return z - z.max() - np.log(np.sum(np.exp(z - z.max())))


def test_ssd_loss_hand_computed():
    """5 anchors; image 0: one object (IoU 81/119 with anchor 0) → 1 positive, the 3 hardest of
    the 4 negatives; image 1: two objects → 2 positives, all 3 negatives (fewer than 3·2)."""
    anchors = jnp.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50], [0, 40, 10, 50], [40, 0, 50, 10]],
                        jnp.float32)
    targets = {"boxes": jnp.array([[[1, 1, 11, 11], [0, 0, 0, 0]], [[20, 20, 30, 30], [40, 40, 51, 51]]], jnp.float32),
               "labels": jnp.array([[2, -1], [0, 1]]), "valid": jnp.array([[True, False], [True, True]])}
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(2, 5, 4)).astype(np.float32)  # C = 3 classes + background
    deltas = rng.normal(size=(2, 5, 4)).astype(np.float32)

    def sl1(d, t):
        z = np.abs(np.asarray(d, np.float64) - t)
        return np.sum(np.where(z < 1, 0.5 * z ** 2, z - 0.5))

    ce = lambda i, a, y: -_log_softmax(logits[i, a])[y]
    # image 0: anchor 0 ↔ G = (1, 1, 11, 11), centre (6, 6) vs (5, 5), both 10 wide: t = (1, 1, 0, 0)·weights/…
    t0 = np.array([10 * 1 / 10, 10 * 1 / 10, 0.0, 0.0])
    neg0 = sorted((ce(0, a, 0) for a in (1, 2, 3, 4)), reverse=True)[:3]
    # image 1: anchor 1 ↔ (20, 20, 30, 30) exactly; anchor 2 ↔ (40, 40, 51, 51): centre 45.5, width 11
    t2 = np.array([10 * 0.5 / 10, 10 * 0.5 / 10, 5 * math.log(1.1), 5 * math.log(1.1)])
    total = (ce(0, 0, 3) + sum(neg0) + sl1(deltas[0, 0], t0)
             + ce(1, 1, 1) + ce(1, 2, 2) + ce(1, 0, 0) + ce(1, 3, 0) + ce(1, 4, 0)
             + sl1(deltas[1, 1], np.zeros(4)) + sl1(deltas[1, 2], t2))
    loss, metrics = jax.jit(lambda z, d: ssd_loss(z, d, anchors, targets, SSDConfig()))(logits, deltas)
    np.testing.assert_allclose(float(loss), total / 3, rtol=1e-5)
    np.testing.assert_allclose(float(metrics["positives"]), 1.5)


def _perfect_ssd_outputs(boxes, labels, valid, anchors, n_classes):
    matched, label = jax.vmap(assign, in_axes=(None, 0, 0, None, None))(anchors, boxes, valid, 0.5, 0.5)
    positive = label == 1
    y = jnp.where(positive, jnp.take_along_axis(labels, matched, 1) + 1, 0)
    gt = jnp.take_along_axis(boxes, matched[..., None], 1)
    deltas = jnp.where(positive[..., None], encode(jnp.where(positive[..., None], gt, anchors[None]), anchors[None], WEIGHTS), 0.0)
    return 30.0 * jax.nn.one_hot(y, n_classes + 1), deltas


def test_ssd_perfect_head_decodes_to_ground_truth():
    from jdl.data import shapes

    config = SSDConfig(select=SMALL)
    anchors = ssd_anchors(config)
    assert anchors.shape == ((16 * 16 + 8 * 8) * 6 + 4 * 4 * 6, 4)
    _, y = shapes.generate("test", 6)
    t = shapes.as_arrays(y)
    logits, deltas = jax.jit(_perfect_ssd_outputs, static_argnums=4)(
        jnp.asarray(t["boxes"]), jnp.asarray(t["labels"]), jnp.asarray(t["valid"]), anchors, 4)
    det = jax.jit(lambda z, d: ssd_detections(z, d, anchors, config))(logits, deltas)
    for i, (gt_boxes, gt_labels) in enumerate(shapes.unpad(y)):
        found = np.asarray(det.valid[i])
        assert found.sum() == len(gt_boxes)
        iou = np.asarray(box_iou(np.asarray(det.boxes[i])[found], gt_boxes))
        match = iou.argmax(axis=1)
        np.testing.assert_allclose(iou.max(axis=1), 1.0, atol=1e-4)
        np.testing.assert_array_equal(np.asarray(det.labels[i])[found], gt_labels[match])
        assert sorted(match.tolist()) == list(range(len(gt_boxes)))


def test_paired_iou_matches_box_iou():
    a = jnp.array([[0, 0, 4, 4], [1, 1, 3, 5]], jnp.float32)
    b = jnp.array([[2, 2, 6, 6], [1, 1, 3, 5]], jnp.float32)
    np.testing.assert_allclose(paired_iou(a, b), np.diag(np.asarray(box_iou(a, b))), rtol=1e-6)
    with pytest.raises(ValueError, match="ssd: one tuple of anchor sizes per level"):
        from jdl.detection.ssd import ssd
        ssd(4, SSDConfig(levels=(1, 2)))
