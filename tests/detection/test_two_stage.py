"""The region proposal network and the two-stage detector: the RPN loss against a hand
computation in numpy (IoU, labels, BCE, encoding and smooth-L1 written out), proposals with
perfect deltas recover the objects, RoI head targets by hand, and a few steps lower the loss."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.detection import anchors as make_anchors
from jdl.detection import candidates, rpn
from jdl.detection import two_stage as ts
from tests.detection.few_steps import train_few_steps


def np_iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def np_encode(g, p, w=(1, 1, 1, 1)):
    gx, gy, gw, gh = (g[0] + g[2]) / 2, (g[1] + g[3]) / 2, g[2] - g[0], g[3] - g[1]
    px, py, pw, ph = (p[0] + p[2]) / 2, (p[1] + p[3]) / 2, p[2] - p[0], p[3] - p[1]
    return np.array([w[0] * (gx - px) / pw, w[1] * (gy - py) / ph, w[2] * math.log(gw / pw), w[3] * math.log(gh / ph)])


def test_rpn_loss_equals_a_hand_computation():
    anchors = np.asarray(make_anchors((2, 2), 8.0, sizes=(8.0, 16.0), ratios=(1.0,)))  # (8, 4)
    gt = np.array([[1.0, 1, 11, 11], [0, 0, 0, 0]])  # one object and a padded slot
    rng = np.random.default_rng(0)
    o, d = rng.normal(size=8).astype(np.float32), rng.normal(size=(8, 4)).astype(np.float32)
    cfg = rpn.RPNConfig(batch_per_image=100, beta=0.5, box_weight=2.0)  # everything labelled is sampled
    loss, m = jax.jit(lambda *a: rpn.rpn_loss(*a, cfg))(
        jax.random.key(0), jnp.asarray(o)[None], jnp.asarray(d)[None], jnp.asarray(anchors),
        jnp.asarray(gt)[None], jnp.array([[True, False]]))
    iou = np.array([np_iou(a, gt[0]) for a in anchors])
    label = np.where(iou >= 0.7, 1, np.where(iou < 0.3, 0, -1))
    label[iou == iou.max()] = 1  # the object's best anchor
    assert label.tolist().count(1) == 1 and label.tolist().count(-1) >= 1  # the case tests all three kinds
    sigma = 1 / (1 + np.exp(-o))
    bce = np.where(label == 1, -np.log(sigma), -np.log(1 - sigma))
    l_obj = bce[label >= 0].sum() / (label >= 0).sum()
    z = np.abs(d - np.stack([np_encode(gt[0], a) for a in anchors]))
    per_anchor = np.where(z < 0.5, 0.5 * z ** 2 / 0.5, z - 0.25).sum(1)
    l_box = per_anchor[label == 1].mean()
    np.testing.assert_allclose(m["rpn_objectness"], l_obj, rtol=1e-5)
    np.testing.assert_allclose(m["rpn_box"], l_box, rtol=1e-5)
    np.testing.assert_allclose(loss, l_obj + 2.0 * l_box, rtol=1e-5)


def test_proposals_with_perfect_deltas_recover_the_objects():
    cfg = rpn.RPNConfig(pre_nms_top_n=50)
    anchors = make_anchors((16, 16), 4.0)  # (2304, 4)
    gt = np.array([[3.0, 5, 14, 16], [30, 20, 58, 48], [40, 2, 48, 26]])
    best = [int(np.argmax([np_iou(a, g) for a in np.asarray(anchors)])) for g in gt]
    o = np.full(anchors.shape[0], -5.0, np.float32)
    o[best] = [6.0, 5.0, 4.0]
    d = np.zeros(anchors.shape, np.float32)
    d[best] = [np_encode(g, np.asarray(anchors)[b]) for g, b in zip(gt, best)]
    fn = jax.jit(lambda o, d: rpn.proposals(o, d, anchors, (64, 64), 10, cfg))
    boxes, scores, valid = fn(jnp.asarray(o)[None], jnp.asarray(d)[None])
    np.testing.assert_allclose(boxes[0, :3], gt, atol=1e-4)
    np.testing.assert_allclose(scores[0, :3], [6, 5, 4])
    assert bool(valid[0].all())
    grads = jax.grad(lambda d: jnp.sum(fn(jnp.asarray(o)[None], d)[0]))(jnp.asarray(d)[None])
    assert float(jnp.abs(grads).max()) == 0.0  # proposals are constants for the RoI head


def test_roi_targets_by_hand():
    cfg = ts.TwoStageConfig(rois_per_image=4, foreground_fraction=1.0)
    gt, gt_labels, gt_valid = jnp.array([[10.0, 10, 30, 30], [40, 40, 50, 50]]), jnp.array([2, 0]), jnp.array([True, True])
    rois = jnp.array([[10.0, 10, 30, 30],   # the object itself: class 3, t = 0
                      [0, 0, 10, 10],       # nothing: background
                      [12, 10, 32, 30],     # IoU 360/440: class 3
                      [40, 40, 52, 50],     # IoU 100/120: class 1
                      [11, 11, 29, 29]])    # a fifth, but padded (invalid)
    valid = jnp.array([True, True, True, True, False])
    boxes, u, t, w = jax.jit(lambda *a: ts.roi_targets(*a, cfg))(jax.random.key(0), rois, valid, gt, gt_labels, gt_valid)
    np.testing.assert_array_equal(boxes, rois[:4])
    np.testing.assert_array_equal(u, [3, 0, 3, 1])
    np.testing.assert_array_equal(w, [1, 1, 1, 1])
    expected = [np.zeros(4), np.zeros(4), np_encode(np.asarray(gt[0]), np.asarray(rois[2]), ts.HEAD_WEIGHTS),
                np_encode(np.asarray(gt[1]), np.asarray(rois[3]), ts.HEAD_WEIGHTS)]
    np.testing.assert_allclose(t, np.stack(expected), atol=1e-5)
    np.testing.assert_allclose(t[2], [-1.0, 0, 0, 0], atol=1e-5)  # 10·(g_x − p_x)/p_w = 10·(20 − 22)/20


def test_select_keeps_the_best_of_each_class():
    boxes = jnp.array([[0.0, 0, 10, 10], [1, 0, 11, 10], [1, 0, 11, 10], [30, 30, 40, 40]])
    scores, labels = jnp.array([0.9, 0.8, 0.7, 0.01]), jnp.array([0, 0, 1, 0])
    out = jax.jit(lambda *a: candidates.select_labelled(*a, n_classes=2, max_detections=5))(
        boxes[None], scores[None], labels[None])
    out = jax.tree.map(lambda a: a[0], out)
    # box 1 overlaps box 0 (same class, IoU 0.82): suppressed; box 2 is another class; box 3 under 0.05
    np.testing.assert_array_equal(out.valid, [True, True, False, False, False])
    np.testing.assert_allclose(out.scores[:2], [0.9, 0.7])
    np.testing.assert_array_equal(out.labels[:2], [0, 1])


def test_a_few_steps_lower_the_loss_and_predict_is_fixed_size():
    from jdl.data import shapes

    cfg = ts.TwoStageConfig(image_size=32, hidden=16, rpn=rpn.RPNConfig(width=8, pre_nms_top_n=40, train_top_n=8,
                                                                       test_top_n=8),
                            rois_per_image=8, max_detections=10)
    det = ts.two_stage_detector(cfg, ts.small_backbone((4, 4, 8, 8, 8)))
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)
    images[0, 4:14, 6:16], images[1, 12:30, 10:28] = 1.0, 0.0
    targets = shapes.as_arrays(shapes.pad_targets([np.array([[6.0, 4, 16, 14]]), np.array([[10.0, 12, 28, 30]])],
                                                  [np.array([1]), np.array([3])], 2))
    losses, train_state = train_few_steps(det, images, targets)
    assert losses[-1] < 0.8 * losses[0]
    out = jax.jit(det.predict)(train_state.params, train_state.state, jnp.asarray(images))
    assert out.boxes.shape == (2, 10, 4) and out.valid.dtype == jnp.bool_
    assert bool(jnp.all((out.boxes[out.valid] >= 0) & (out.boxes[out.valid] <= 32)))


def test_a_backbone_whose_stride_does_not_divide_the_image_is_refused():
    with pytest.raises(ValueError, match="image_size=30 is not a multiple of the backbone's stride 4"):
        ts.two_stage_detector(ts.TwoStageConfig(image_size=30))
