"""The shared detector training loop: flips move boxes with pixels, a few steps lower the loss,
the evaluation scores a perfect detector 1 and pads the last batch without changing results,
and the failure analysis counts found objects by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.data import shapes
from jdl.detection import Detections, Detector, zoo
from jdl.detection.analysis import found_objects, recall_by_group
from jdl.detection.train import TrainConfig, evaluate, flip_batch, make_detector_step, optimizer_for
from jdl.train.state import TrainState


@pytest.fixture(scope="module")
def data():
    x, y = shapes.generate("test", 16)
    return x.astype(np.float32) / 255.0, y


def test_flip_moves_boxes_with_pixels(data):
    x, y = data
    t = shapes.as_arrays(y[:4])
    key = jax.random.key(3)
    fx, ft = jax.jit(flip_batch)(key, jnp.asarray(x[:4]), t)
    flipped = np.asarray(jax.random.bernoulli(key, 0.5, (4,)))
    assert flipped.any() and not flipped.all()  # this key flips some images and not others
    for i in range(4):
        want = x[i, :, ::-1] if flipped[i] else x[i]
        np.testing.assert_array_equal(np.asarray(fx[i]), want)
        b = t["boxes"][i]
        want_b = np.stack([64 - b[:, 2], b[:, 1], 64 - b[:, 0], b[:, 3]], -1) if flipped[i] else b
        np.testing.assert_allclose(np.asarray(ft["boxes"][i]), want_b)


def test_a_few_steps_lower_the_loss(data):
    x, y = data
    detector = zoo.build("yolo", 4, (4, 8, 8))
    opt = optimizer_for(TrainConfig(epochs=1, learning_rate=3e-3, warmup_epochs=0.0), 5)
    params, state = detector.init(jax.random.key(0), jnp.asarray(x[:4]))
    ts = TrainState(params, state, opt.init(params), jnp.zeros([], jnp.int32), jax.random.key(1))
    step = make_detector_step(detector, opt, flip=False)
    batch = {"images": jnp.asarray(x[:4]), "targets": shapes.as_arrays(y[:4])}
    losses = []
    for _ in range(5):
        ts, m = step(ts, batch)
        losses.append(float(m["loss"]))
    assert losses[-1] < 0.8 * losses[0], losses


def test_evaluate_scores_a_perfect_detector_one(data):
    """A 'detector' that reads the answer off the image's index (stored in pixel (0, 0, 0))
    returns the ground truth; mAP@0.5 = COCO mAP = 1, in batches of 5 over 16 images (padded)."""
    x, y = data
    t = shapes.as_arrays(y)
    x = x.copy()
    x[:, 0, 0, 0] = np.arange(len(x))

    def predict(params, state, images):
        i = images[:, 0, 0, 0].astype(jnp.int32)
        return Detections(jnp.asarray(t["boxes"])[i], jnp.where(jnp.asarray(t["valid"])[i], 0.9, 0.0),
                          jnp.asarray(t["labels"])[i], jnp.asarray(t["valid"])[i])

    oracle = Detector("oracle", None, None, predict)
    scores = evaluate(oracle, {}, {}, (x, y), 4, batch_size=5)
    assert scores["map50"] == 1.0 and scores["map"] == 1.0
    np.testing.assert_allclose(scores["detections_per_image"], t["valid"].sum(1).mean())


def test_found_objects_and_recall_by_hand():
    gt = [(np.array([[0, 0, 8, 8], [20, 20, 40, 40], [30, 30, 50, 50]], np.float32), np.array([0, 1, 1]))]
    dets = [(np.array([[0, 0, 8, 9], [20, 20, 40, 40], [30, 30, 50, 50]], np.float32),
             np.array([0.9, 0.8, 0.1]), np.array([0, 1, 1]))]  # the third scores below 0.3
    found = found_objects(dets, gt)
    np.testing.assert_array_equal(found[0], [True, True, False])
    r = recall_by_group(found, gt)
    assert r["small (<10 px)"] == {"objects": 1, "recall": 1.0}
    assert r["overlapping"] == {"objects": 2, "recall": 0.5} and r["isolated"]["objects"] == 1
