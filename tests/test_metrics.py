"""Metrics: the course's definitions on hand-worked examples, and scikit-learn where it has them."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as skm

import jdl
from jdl import metrics


# --- classification ---

def test_confusion_matrix_worked_example_and_sklearn():
    y = jnp.array([0, 0, 1, 1, 1, 2])
    y_hat = jnp.array([0, 1, 1, 1, 2, 2])
    c = metrics.confusion_matrix(y, y_hat, 3)
    np.testing.assert_array_equal(c, [[1, 1, 0], [0, 2, 1], [0, 0, 1]])  # rows true, columns predicted
    rng = np.random.default_rng(0)
    y, y_hat = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    np.testing.assert_array_equal(jax.jit(metrics.confusion_matrix, static_argnums=2)(y, y_hat, 5),
                                  skm.confusion_matrix(y, y_hat, labels=range(5)))


def test_precision_recall_f1_worked_example():
    # binary, class 1 positive: TP = 3, FP = 1, FN = 2, TN = 2
    y = jnp.array([1, 1, 1, 1, 1, 0, 0, 0])
    y_hat = jnp.array([1, 1, 1, 0, 0, 1, 0, 0])
    p, r, f1, support = metrics.precision_recall_f1(y, y_hat, 2)
    assert p[1] == pytest.approx(3 / (3 + 1)) and r[1] == pytest.approx(3 / (3 + 2))
    assert f1[1] == pytest.approx(2 * 0.75 * 0.6 / (0.75 + 0.6))
    assert p[0] == pytest.approx(2 / 4) and r[0] == pytest.approx(2 / 3)
    np.testing.assert_array_equal(support, [3, 5])
    jitted = jax.jit(metrics.precision_recall_f1, static_argnums=(2, 3))(y, y_hat, 2, "macro")
    assert float(jitted[0]) == pytest.approx((0.5 + 0.75) / 2)
    with pytest.raises(ValueError, match=r"confusion_matrix: labels and predictions must both have shape \(N,\), got \(8,\) and \(7,\)"):
        metrics.confusion_matrix(y, y_hat[:7], 2)


@pytest.mark.parametrize("average", [None, "macro", "micro", "weighted"])
def test_precision_recall_f1_equal_sklearn(average):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 6, 300)
    y_hat = np.where(rng.random(300) < 0.6, y, rng.integers(0, 6, 300))
    y_hat[y_hat == 5] = 4  # class 5 never predicted: precision 0/0 → 0
    ours = metrics.precision_recall_f1(y, y_hat, 6, average=average)
    ref = skm.precision_recall_fscore_support(y, y_hat, labels=range(6), average=average, zero_division=0)
    for a, b in zip(ours[:3], ref[:3]):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    if average == "micro":
        assert float(ours[0]) == pytest.approx(np.mean(y == y_hat))
    with pytest.raises(ValueError, match="average must be None, 'micro', 'macro' or 'weighted', got 'mean'"):
        metrics.precision_recall_f1(y, y_hat, 6, average="mean")


# --- IoU ---

def raster_iou(a, b):
    """Independent reference: count unit cells of an integer grid covered by each box."""
    def cells(box):
        x1, y1, x2, y2 = map(int, box)
        return {(i, j) for i in range(x1, x2) for j in range(y1, y2)}
    ca, cb = cells(a), cells(b)
    union = len(ca | cb)
    return len(ca & cb) / union if union else 0.0


def test_iou_worked_examples():
    a = jnp.array([[0, 0, 2, 2], [0, 0, 4, 4], [0, 0, 1, 1]], jnp.float32)
    b = jnp.array([[1, 1, 3, 3], [0, 0, 2, 2], [1, 0, 2, 1], [5, 5, 6, 6]], jnp.float32)
    iou = metrics.box_iou(a, b)
    assert iou.shape == (3, 4)
    assert iou[0, 0] == pytest.approx(1 / 7)  # overlap 1, union 4 + 4 − 1
    assert iou[0, 1] == pytest.approx(1.0) and iou[1, 1] == pytest.approx(4 / 16)  # contained
    assert iou[2, 2] == 0.0 and iou[0, 3] == 0.0  # touching edge, disjoint


def test_iou_equals_rasterized_reference():
    rng = np.random.default_rng(2)
    corners = rng.integers(0, 12, size=(2, 15, 4))
    boxes = [np.concatenate([np.minimum(c[:, :2], c[:, 2:]), np.maximum(c[:, :2], c[:, 2:])], 1) for c in corners]
    iou = jax.jit(metrics.box_iou)(boxes[0], boxes[1])
    ref = [[raster_iou(p, q) for q in boxes[1]] for p in boxes[0]]
    np.testing.assert_allclose(iou, ref, rtol=1e-6, atol=1e-7)
    host = metrics.box_iou(boxes[0], boxes[1])  # two numpy arrays: the numpy path
    assert isinstance(host, np.ndarray) and host.dtype == np.float32
    np.testing.assert_allclose(host, ref, rtol=1e-6, atol=1e-7)


def test_iou_refuses_wrong_shape():
    with pytest.raises(ValueError, match=r"box_iou: boxes must have shape \(N, 4\) and \(M, 4\).*got \(3,\) and \(2, 4\)"):
        metrics.box_iou(jnp.zeros(3), jnp.zeros((2, 4)))


# --- NMS ---

def reference_nms(boxes, scores, threshold):
    kept = []
    for i in sorted(range(len(scores)), key=lambda i: (-scores[i], i)):
        if all(raster_iou(boxes[i], boxes[j]) <= threshold for j in kept):
            kept.append(i)
    return sorted(kept)


def test_nms_worked_example():
    boxes = jnp.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]], jnp.float32)
    scores = jnp.array([0.9, 0.8, 0.7, 0.95])
    # [3] wins; [0] overlaps it with IoU 0.9 → suppressed; [1] has IoU 72/118 ≈ 0.61 with [3] → suppressed
    np.testing.assert_array_equal(metrics.nms(boxes, scores, 0.5), [False, False, True, True])
    # at 0.95 nothing overlaps that much: all kept
    assert bool(metrics.nms(boxes, scores, 0.95).all())


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_nms_equals_greedy_reference(threshold):
    rng = np.random.default_rng(3)
    xy = rng.integers(0, 20, size=(40, 2))
    wh = rng.integers(1, 8, size=(40, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    scores = rng.permutation(40) / 40.0
    keep = jax.jit(metrics.nms, static_argnums=2)(boxes, scores, threshold)
    assert list(np.flatnonzero(keep)) == reference_nms(boxes, scores, threshold)


def test_nms_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match=r"nms: boxes must have shape \(N, 4\) = \(3, 4\)"):
        metrics.nms(jnp.zeros((2, 4)), jnp.zeros(3))


# --- AP ---

def ranked_example():
    """Five detections ranked by score, TP FP TP TP FP, with 4 ground-truth objects:
    P = 1, 1/2, 2/3, 3/4, 3/5 and R = 1/4, 1/4, 1/2, 3/4, 3/4."""
    return np.array([0.9, 0.8, 0.7, 0.6, 0.5]), np.array([1, 0, 1, 1, 0], bool), 4


def test_precision_recall_curve_worked_example():
    p, r = metrics.precision_recall_curve(*ranked_example())
    np.testing.assert_allclose(p, [1, 1 / 2, 2 / 3, 3 / 4, 3 / 5])
    np.testing.assert_allclose(r, [1 / 4, 1 / 4, 1 / 2, 3 / 4, 3 / 4])


@pytest.mark.parametrize("method, expected", [
    ("all_point", 0.25 * 1 + 0.25 * 0.75 + 0.25 * 0.75),  # envelope 1 | 3/4 | 3/4 over recall quarters
    ("11_point", (3 * 1 + 3 * 0.75 + 2 * 0.75 + 3 * 0) / 11),  # r ≤ .2: 1; .3–.7: 3/4; ≥ .8: 0
    ("101_point", (26 * 1 + 50 * 0.75 + 25 * 0) / 101),  # r ≤ .25: 1; .26–.75: 3/4; > .75: 0
    ("step", 0.25 * 1 + 0.25 * 2 / 3 + 0.25 * 3 / 4),
])
def test_average_precision_worked_example(method, expected):
    assert metrics.average_precision(*ranked_example(), method=method) == pytest.approx(expected)


def test_step_ap_and_curve_equal_sklearn():
    rng = np.random.default_rng(4)
    y = rng.random(200) < 0.3
    scores = rng.permutation(200) / 200.0 + 0.5 * y * rng.random(200)
    ap = metrics.average_precision(scores, y, int(y.sum()), method="step")
    assert ap == pytest.approx(skm.average_precision_score(y, scores), rel=1e-9)
    p, r = metrics.precision_recall_curve(scores, y, int(y.sum()))
    ref_p, ref_r, _ = skm.precision_recall_curve(y, scores)
    np.testing.assert_allclose(p, ref_p[::-1][1:], rtol=1e-12)  # sklearn: increasing score, plus an end point
    np.testing.assert_allclose(r, ref_r[::-1][1:], rtol=1e-12)
    # interpolation only raises precision: all-point ≥ step
    assert metrics.average_precision(scores, y, int(y.sum())) >= ap


def test_ap_edge_cases():
    assert np.isnan(metrics.average_precision([], [], 0))
    assert metrics.average_precision([], [], 3) == 0.0
    assert metrics.average_precision([0.5, 0.4], [True, True], 2) == 1.0
    with pytest.raises(ValueError, match="method must be one of"):
        metrics.average_precision([0.5], [True], 1, method="voc")


# --- matching, detection precision/recall, mAP ---

def test_match_detections_greedy_by_score():
    gt = [[0, 0, 10, 10], [20, 0, 30, 10]]
    preds = [[0, 0, 10, 10], [1, 0, 10, 10], [20, 0, 30, 10], [50, 50, 60, 60]]
    scores = [0.6, 0.9, 0.5, 0.8]
    # 0.9 takes gt 0 (IoU 0.9); 0.8 is elsewhere: FP; 0.6 finds gt 0 taken: duplicate → FP; 0.5 takes gt 1
    np.testing.assert_array_equal(metrics.match_detections(preds, scores, gt, 0.5), [False, True, True, False])
    np.testing.assert_array_equal(metrics.match_detections(preds, scores, gt, 0.95), [True, False, True, False])
    assert metrics.match_detections(np.zeros((0, 4)), [], gt).shape == (0,)


def scene():
    """Two images, two classes.
    class 0: one object (0,0,10,10); one detection (0,0,10,7.2), IoU 0.72, score 0.9.
    class 1: one object (20,20,30,30) in image 2; an exact detection (score 0.8) and a false one
    elsewhere scoring higher (0.95): P = 0, 1/2 at R = 0, 1 → AP 1/2 at every threshold."""
    detections = [(np.array([[0, 0, 10, 7.2]]), np.array([0.9]), np.array([0])),
                  (np.array([[20, 20, 30, 30], [50, 50, 60, 60]]), np.array([0.8, 0.95]), np.array([1, 1]))]
    ground_truths = [(np.array([[0, 0, 10, 10]]), np.array([0])),
                     (np.array([[20, 20, 30, 30]]), np.array([1]))]
    return detections, ground_truths


def test_map_worked_example_voc_and_coco():
    detections, ground_truths = scene()
    voc = metrics.mean_average_precision(detections, ground_truths, 2)
    np.testing.assert_allclose(voc["ap"], [[1.0, 0.5]])
    assert voc["map"] == pytest.approx(0.75)
    coco = metrics.mean_average_precision(detections, ground_truths, 2, metrics.COCO_IOU_THRESHOLDS)
    assert metrics.COCO_IOU_THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
    # class 0 is a TP up to IoU threshold 0.7 (5 thresholds of 10), class 1 is 1/2 throughout
    np.testing.assert_allclose(coco["ap"][:, 0], [1] * 5 + [0] * 5)
    np.testing.assert_allclose(coco["ap"][:, 1], [0.5] * 10)
    assert coco["map"] == pytest.approx((5 * 0.75 + 5 * 0.25) / 10)


def test_map_skips_classes_without_ground_truth():
    detections, ground_truths = scene()
    result = metrics.mean_average_precision(detections, ground_truths, 3)
    assert np.isnan(result["ap"][0, 2]) and result["map"] == pytest.approx(0.75)


def test_detection_precision_recall_at_iou():
    detections, ground_truths = scene()
    p, r = metrics.detection_precision_recall(detections, ground_truths, 2, iou_threshold=0.5)
    np.testing.assert_allclose(p, [1.0, 0.5])
    np.testing.assert_allclose(r, [1.0, 1.0])
    p, r = metrics.detection_precision_recall(detections, ground_truths, 2, iou_threshold=0.8, score_threshold=0.85)
    np.testing.assert_allclose(p, [0.0, 0.0])  # class 0 misses at 0.8; class 1 keeps only the false 0.95
    np.testing.assert_allclose(r, [0.0, 0.0])


def test_map_equals_sklearn_on_single_box_images():
    """With one object per image and exact or far-off boxes, detection AP ('step') reduces to
    ranking AP, which scikit-learn computes independently."""
    rng = np.random.default_rng(5)
    n = 60
    hit = rng.random(n) < 0.6
    scores = rng.permutation(n) / n
    detections, ground_truths = [], []
    for i in range(n):
        gt = np.array([[0, 0, 10, 10]], np.float32)
        box = gt if hit[i] else gt + 100
        detections.append((box, scores[i:i + 1], np.array([0])))
        ground_truths.append((gt, np.array([0])))
    ours = metrics.mean_average_precision(detections, ground_truths, 1, method="step")["map"]
    ref = skm.average_precision_score(hit, scores) * hit.sum() / n  # recall denominator: all n objects
    assert ours == pytest.approx(ref, rel=1e-9)


def test_public_api():
    assert jdl.metrics.box_iou is metrics.box_iou
    assert set(itertools.chain(metrics.AP_METHODS)) == {"all_point", "11_point", "101_point", "step"}


def random_scene(rng, n_images=8, n_classes=3):
    detections, ground_truths = [], []
    for _ in range(n_images):
        m = rng.integers(1, 5)
        xy = rng.uniform(0, 80, (m, 2))
        gt = np.concatenate([xy, xy + rng.uniform(8, 30, (m, 2))], 1)
        gt_labels = rng.integers(0, n_classes, m)
        found = gt + rng.normal(0, 3, gt.shape)  # noisy detections of the objects: IoU spread over 0.3–1
        found[:, 2:] = np.maximum(found[:, 2:], found[:, :2] + 1)
        extra_xy = rng.uniform(0, 100, (3, 2))
        extra = np.concatenate([extra_xy, extra_xy + rng.uniform(5, 20, (3, 2))], 1)  # false positives
        labels = np.concatenate([np.where(rng.random(m) < 0.85, gt_labels, rng.integers(0, n_classes, m)),
                                 rng.integers(0, n_classes, 3)])
        detections.append((np.concatenate([found, extra]), None, labels))
        ground_truths.append((gt, gt_labels))
    scores = rng.permutation(sum(len(d[2]) for d in detections)) / 1000 + 0.001  # distinct
    start = 0
    for i, (boxes, _, labels) in enumerate(detections):
        detections[i] = (boxes, scores[start:start + len(labels)], labels)
        start += len(labels)
    return detections, ground_truths


def test_coco_map_equals_pycocotools():
    """COCO's own evaluator (pycocotools) on random scenes: AP@[.5:.95] and AP@.5 with 101-point
    interpolation equal ours."""
    pytest.importorskip("pycocotools")
    import contextlib
    import io
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    detections, ground_truths = random_scene(np.random.default_rng(6))
    xywh = lambda b: [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]  # noqa: E731
    images = [{"id": i + 1} for i in range(len(ground_truths))]
    objects = [(i + 1, b, c) for i, (boxes, labels) in enumerate(ground_truths) for b, c in zip(boxes, labels)]
    annotations = [{"id": n + 1, "image_id": i, "category_id": int(c) + 1, "bbox": xywh(b),
                    "area": float((b[2] - b[0]) * (b[3] - b[1])), "iscrowd": 0} for n, (i, b, c) in enumerate(objects)]
    results = [{"image_id": i + 1, "category_id": int(c) + 1, "bbox": xywh(b), "score": float(s)}
               for i, (boxes, scores, labels) in enumerate(detections) for b, s, c in zip(boxes, scores, labels)]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {"images": images, "annotations": annotations,
                        "categories": [{"id": c + 1} for c in range(3)]}
        coco.createIndex()
        evaluator = COCOeval(coco, coco.loadRes(results), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    ours = metrics.mean_average_precision(detections, ground_truths, 3, metrics.COCO_IOU_THRESHOLDS, "101_point")
    assert ours["map"] == pytest.approx(evaluator.stats[0], abs=1e-6)
    assert ours["map_per_threshold"][0] == pytest.approx(evaluator.stats[1], abs=1e-6)
    assert 0.1 < ours["map"] < 0.9 and ours["map"] < ours["map_per_threshold"][0]  # neither trivial nor hopeless


# --- language models ---

def test_bits_per_char_is_torch_cross_entropy_over_ln2_and_log2_v_when_uniform():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    logits, targets = rng.normal(size=(3, 5, 7)).astype(np.float32), rng.integers(0, 7, (3, 5))
    ref = torch.nn.functional.cross_entropy(torch.tensor(logits).reshape(-1, 7), torch.tensor(targets).reshape(-1))
    assert float(metrics.bits_per_char(jnp.asarray(logits), jnp.asarray(targets))) == pytest.approx(
        float(ref) / np.log(2), rel=1e-6)
    uniform = metrics.bits_per_char(jnp.zeros((2, 4, 104)), jnp.zeros((2, 4), jnp.int32))
    assert float(uniform) == pytest.approx(np.log2(104), rel=1e-6)  # evenly spread: log₂ V bits
