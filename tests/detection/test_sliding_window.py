"""The sliding-window detector: the convolutional application equals cropping and classifying
every window (OverFeat's equivalence), training crops equal the pyramid's windows, window labels
by hand, and a few steps lower the loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.detection import sliding_window as sw
from jdl.detection.detector import Detections
from tests.detection.few_steps import train_few_steps
from tests.helpers import draw_uniform

CFG = sw.SlidingWindowConfig(widths=(4, 6, 6, 8), box_sizes=(10.0, 16.0), image_size=24, pad=4,
                             n_negative=6, max_detections=10, pre_nms_top_k=40)


@pytest.fixture(scope="module")
def classifier_params():
    clf = sw.window_classifier(CFG)
    params, _ = clf.init(jax.random.key(0), jnp.zeros((1, CFG.window, CFG.window, 3)))
    return clf, params


def test_convolutional_application_equals_classifying_every_crop(classifier_params):
    clf, params = classifier_params
    image = draw_uniform(jax.random.key(1), (2, 27, 31, 3))
    dense = jax.jit(lambda p, x: sw.apply_convolutionally(clf, p, x))(params, image)  # (2, g_h, g_w, C + 1)
    g_h, g_w = (27 - CFG.window) // sw.STRIDE + 1, (31 - CFG.window) // sw.STRIDE + 1
    assert dense.shape == (2, g_h, g_w, CFG.n_classes + 1)
    x = np.asarray(image)
    crops = np.stack([x[:, 2 * i:2 * i + CFG.window, 2 * j:2 * j + CFG.window]
                      for i in range(g_h) for j in range(g_w)], axis=1)  # (2, g_h·g_w, w, w, 3)
    one_by_one, _ = jax.jit(clf.apply)(params, {}, jnp.asarray(crops.reshape(-1, *crops.shape[2:])))
    np.testing.assert_allclose(np.asarray(dense).reshape(-1, CFG.n_classes + 1), np.asarray(one_by_one),
                               rtol=1e-5, atol=1e-5)


def test_training_crops_equal_the_pyramid_windows():
    images = draw_uniform(jax.random.key(2), (1, CFG.image_size, CFG.image_size, 3))
    @jax.jit
    def levels_and_crops(images):
        out = []
        for box_size in CFG.box_sizes:
            level, rho = sw.pyramid_level(images, box_size, CFG)
            g = (level.shape[1] - CFG.window) // sw.STRIDE + 1
            centre = sw.window_boxes((g, g), rho, CFG)  # (g·g, 4)
            out.append((level, centre, sw.crops(images, sw.window_of(centre, CFG)[None], CFG)[0]))
        return out

    for box_size, (level, centre, cut) in zip(CFG.box_sizes, levels_and_crops(images)):
        g = (level.shape[1] - CFG.window) // sw.STRIDE + 1
        np.testing.assert_allclose(centre[:, 2] - centre[:, 0], box_size, rtol=0.05)  # the box the level detects
        for n, (i, j) in enumerate([(0, 0), (g - 1, 1), (2, g - 1)]):
            k = i * g + j
            expected = level[0, 2 * i:2 * i + CFG.window, 2 * j:2 * j + CFG.window]
            np.testing.assert_allclose(cut[k], expected, atol=1e-5)


def test_label_windows_by_iou():
    gt = jnp.array([[10.0, 10, 20, 20], [30, 30, 40, 40], [0, 0, 0, 0]])
    labels, valid = jnp.array([2, 0, -1]), jnp.array([True, True, False])
    boxes = jnp.array([[10.0, 10, 20, 20],   # IoU 1 with object 0: class 1 + 2
                       [12, 10, 22, 20],     # IoU 80/120 = 0.67: class 3
                       [15, 10, 25, 20],     # IoU 50/150 = 0.33: ignored
                       [50, 50, 60, 60],     # nothing: background
                       [0, 0, 1, 1]])        # the padded (empty) box must not count
    y, w = jax.jit(sw.label_windows)(boxes, gt, labels, valid)
    np.testing.assert_array_equal(y, [3, 3, 0, 0, 0])
    np.testing.assert_array_equal(w, [1, 1, 0, 1, 1])


def test_a_few_steps_lower_the_loss_and_predict_is_fixed_size():
    from jdl.data import shapes

    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (4, CFG.image_size, CFG.image_size, 3)).astype(np.float32)
    targets = shapes.as_arrays(shapes.pad_targets([np.array([[2.0, 3, 14, 15]]), np.array([[8.0, 6, 20, 18]])] * 2,
                                                  [np.array([1]), np.array([3])] * 2, 2))
    det = sw.sliding_window_detector(CFG)
    losses, train_state = train_few_steps(det, images, targets)
    assert losses[-1] < 0.7 * losses[0]
    out = jax.jit(det.predict)(train_state.params, train_state.state, jnp.asarray(images))
    assert isinstance(out, Detections) and out.boxes.shape == (4, CFG.max_detections, 4)
    assert out.labels.dtype == jnp.int32 and bool(jnp.all(out.labels[out.valid] < CFG.n_classes))


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="SlidingWindowConfig: need 0 < box ≤ window"):
        sw.SlidingWindowConfig(window=10, box=12)
    with pytest.raises(ValueError, match="positive box_sizes"):
        sw.SlidingWindowConfig(box_sizes=())
