"""Anchors, R-CNN box encoding, anchor assignment and the box/SVM losses, against hand-computed
examples, an independent loop reference and PyTorch."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jdl.detection import (IGNORE, NEGATIVE, POSITIVE, anchor_shapes, anchors, assign, box_least_squares,
                           clip_boxes, decode, encode, hinge, smooth_l1, subsample)


def test_anchors_hand_computed():
    a = np.asarray(anchors((2, 3), stride=8, sizes=(8, 16), ratios=(0.5, 1.0, 2.0)))
    assert a.shape == (2 * 3 * 6, 4)
    r = math.sqrt(0.5)
    # cell (0, 0), centre (4, 4); anchor 0: size 8, h/w = 0.5 → w = 8/√0.5, h = 8·√0.5
    np.testing.assert_allclose(a[0], [4 - 4 / r, 4 - 4 * r, 4 + 4 / r, 4 + 4 * r], rtol=1e-6)
    # cell (i=1, j=2), anchor 4 (size 16, ratio 1): centre (20, 12), a 16×16 square
    np.testing.assert_allclose(a[(1 * 3 + 2) * 6 + 4], [12, 4, 28, 20], rtol=1e-6)
    w, h = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    np.testing.assert_allclose((w * h).reshape(6, 2, 3), np.broadcast_to([[64.0] * 3, [256.0] * 3], (6, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose((h / w).reshape(6, 2, 3)[:, :, :], np.broadcast_to([0.5, 1, 2], (6, 2, 3)), rtol=1e-5)
    assert anchor_shapes().shape == (9, 2)  # the course's 3 scales × 3 aspect ratios
    assert anchors((4, 4), 16).shape == (4 * 4 * 9, 4)
    with pytest.raises(ValueError, match="anchors: feature_shape must be positive"):
        anchors((0, 3), 8)


def test_encode_hand_computed_and_weights():
    p, g = jnp.array([[0.0, 0.0, 10.0, 20.0]]), jnp.array([[2.0, 4.0, 14.0, 24.0]])
    # P: centre (5, 10), 10×20; G: centre (8, 14), 12×20
    np.testing.assert_allclose(encode(g, p)[0], [0.3, 0.2, math.log(1.2), 0.0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(encode(g, p, (10, 10, 5, 5))[0], [3.0, 2.0, 5 * math.log(1.2), 0.0], rtol=1e-6, atol=1e-6)
    huge = decode(jnp.array([[0.0, 0.0, 100.0, 0.0]]), p)  # d_w clipped at log(1000/16)
    np.testing.assert_allclose(huge[0, 2] - huge[0, 0], 10 * 1000 / 16, rtol=1e-5)
    np.testing.assert_allclose(clip_boxes(jnp.array([[-3.0, 5.0, 70.0, 80.0]]), 64, 60)[0], [0, 5, 60, 64])
    with pytest.raises(ValueError, match="encode: boxes and reference boxes must end in 4"):
        encode(jnp.zeros((2, 3)), p)


coords = st.floats(-50, 50, allow_nan=False, width=32)
sizes = st.floats(1, 60, allow_nan=False, width=32)  # size ratios ≤ 60 < e^clip = 62.5


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(coords, coords, sizes, sizes, coords, coords, sizes, sizes), min_size=1, max_size=5),
       st.sampled_from([(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)]))
def test_decode_inverts_encode(rows, weights):
    r = np.asarray(rows, np.float64)
    g = np.c_[r[:, 0], r[:, 1], r[:, 0] + r[:, 2], r[:, 1] + r[:, 3]]
    p = np.c_[r[:, 4], r[:, 5], r[:, 4] + r[:, 6], r[:, 5] + r[:, 7]]
    with jax.enable_x64(True):
        back = decode(encode(jnp.asarray(g), jnp.asarray(p), weights), jnp.asarray(p), weights)
        np.testing.assert_allclose(np.asarray(back), g, rtol=1e-9, atol=1e-9)


GT = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60], [80, 80, 90, 90]], np.float32)
GT_VALID = np.array([True, True, False, True])  # slot 2 is padding; slot 3 overlaps no anchor
ANCHORS = np.array([[0, 0, 10, 10],    # IoU 1 with g0: positive
                    [0, 0, 10, 5],     # IoU 0.5 with g0: ignored
                    [0, 0, 10, 2],     # IoU 0.2: negative
                    [20, 20, 30, 25],  # IoU 0.5 with g1, but g1's best anchor: forced positive
                    [25, 20, 35, 30],  # IoU 1/3 with g1: ignored
                    [50, 50, 60, 60]], np.float32)  # matches only the padded box: negative


def test_assign_hand_made_example():
    matched, label = assign(ANCHORS, GT, GT_VALID)
    np.testing.assert_array_equal(label, [POSITIVE, IGNORE, NEGATIVE, POSITIVE, IGNORE, NEGATIVE])
    assert matched[0] == 0 and matched[3] == 1
    _, label = assign(ANCHORS, GT, GT_VALID, force_best=False)
    np.testing.assert_array_equal(label, [POSITIVE, IGNORE, NEGATIVE, IGNORE, IGNORE, NEGATIVE])
    _, label = assign(ANCHORS, GT)  # without the mask the padded box would claim anchor 5
    assert label[5] == POSITIVE
    with pytest.raises(ValueError, match=r"assign: gt_valid must have shape \(4,\)"):
        assign(ANCHORS, GT, GT_VALID[:3])


def ref_assign(anchors_, gt, valid, hi, lo):
    """Loops: the Faster R-CNN rule, one anchor and one ground truth at a time."""
    def iou(a, b):
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
    m = np.array([[iou(a, g) if v else -1.0 for g, v in zip(gt, valid)] for a in anchors_])
    label = np.where(m.max(1) >= hi, 1, np.where(m.max(1) < lo, 0, -1))
    for j in range(len(gt)):
        if valid[j] and m[:, j].max() > 0:
            label[np.isclose(m[:, j], m[:, j].max(), rtol=1e-6)] = 1
    return label


def test_assign_equals_a_loop_reference_under_vmap():
    rng = np.random.default_rng(0)
    a = np.asarray(anchors((4, 4), 16, sizes=(12, 24, 40)))
    xy = rng.uniform(0, 48, (3, 5, 2))
    gt = np.concatenate([xy, xy + rng.uniform(6, 30, (3, 5, 2))], -1).astype(np.float32)
    valid = rng.uniform(size=(3, 5)) < 0.7
    valid[:, 0] = True
    _, labels = jax.jit(jax.vmap(assign, in_axes=(None, 0, 0)))(a, gt, valid)
    for b in range(3):
        np.testing.assert_array_equal(labels[b], ref_assign(a, gt[b], valid[b], 0.7, 0.3))


def test_subsample_keeps_at_most_half_positives():
    label = jnp.asarray(np.r_[np.ones(40), np.zeros(500), -np.ones(60)].astype(np.int32))
    kept = subsample(jax.random.key(0), label, n=64)
    assert int((kept == POSITIVE).sum()) == 32 and int((kept == NEGATIVE).sum()) == 32
    assert bool(jnp.all(label[kept == POSITIVE] == POSITIVE)) and bool(jnp.all(label[kept == NEGATIVE] == NEGATIVE))
    few = subsample(jax.random.key(1), label.at[5:40].set(IGNORE), n=64)
    assert int((few == POSITIVE).sum()) == 5 and int((few == NEGATIVE).sum()) == 59


def test_smooth_l1_and_least_squares_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    pred, target = rng.normal(size=(2, 7, 4)).astype(np.float32) * 2, rng.normal(size=(2, 7, 4)).astype(np.float32)
    where = rng.uniform(size=(2, 7)) < 0.5
    for beta in (1.0, 1 / 9):
        per = torch.nn.functional.smooth_l1_loss(torch.tensor(pred), torch.tensor(target), beta=beta,
                                                 reduction="none").sum(-1).numpy()
        np.testing.assert_allclose(smooth_l1(pred, target, beta, reduction="none"), per, rtol=1e-5)
        np.testing.assert_allclose(smooth_l1(pred, target, beta, where), per[where].mean(), rtol=1e-5)
    np.testing.assert_allclose(box_least_squares(pred, target, where), ((pred - target) ** 2).sum(-1)[where].mean(), rtol=1e-5)
    with pytest.raises(ValueError, match=r"smooth_l1: where must have the boxes' shape \(2, 7\)"):
        smooth_l1(pred, target, where=where[0])


def test_hinge_values_and_gradient():
    s, y = jnp.array([2.0, 0.5, -0.3, -3.0]), jnp.array([1.0, 1.0, 1.0, -1.0])
    np.testing.assert_allclose(hinge(s, y, reduction="none"), [0.0, 0.5, 1.3, 0.0])
    np.testing.assert_allclose(jax.grad(lambda s: hinge(s, y, reduction="sum"))(s), [0.0, -1.0, -1.0, 0.0])
    with pytest.raises(ValueError, match="hinge: predictions have shape"):
        hinge(s, y[:2])
