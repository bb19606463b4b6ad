"""The shapes detection set: deterministic, boxes tight around the drawn pixels, padded batches,
cached, and split by ``jdl.data.load``."""

import os

import numpy as np
import pytest

import jdl
from jdl.data import shapes


@pytest.fixture(scope="module")
def small():
    return shapes.generate("train", 48)


def test_same_seed_same_bytes_other_seed_other_images(small):
    x, y = small
    x2, y2 = shapes.generate("train", 48)
    assert x.tobytes() == x2.tobytes() and y.tobytes() == y2.tobytes()
    x3, _ = shapes.generate("train", 48, seed=1)
    xt, _ = shapes.generate("test", 48)
    assert (x3 != x).any(axis=(1, 2, 3)).all() and (xt != x).any(axis=(1, 2, 3)).all()
    # image i depends on (seed, split, i) alone: the first 5 of 48 are the first 5 of 5
    assert shapes.generate("train", 5)[0].tobytes() == x[:5].tobytes()


def test_boxes_are_the_tight_boxes_of_the_drawn_pixels(small):
    x, y = small
    for i in range(len(x)):
        image, boxes, labels, masks = shapes.scene(np.random.default_rng((shapes.SEED, 0, i)))
        np.testing.assert_array_equal(image, x[i])
        n = int(y["valid"][i].sum())
        assert 1 <= n == len(masks) <= 6
        np.testing.assert_array_equal(y["labels"][i, :n], labels)
        hidden = np.zeros((64, 64), bool)
        for k in range(n - 1, -1, -1):  # from the top object down
            rows, cols = np.nonzero(masks[k])
            tight = [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
            np.testing.assert_array_equal(y["boxes"][i, k], tight)
            visible = masks[k] & ~hidden
            assert visible.sum() >= 0.5 * masks[k].sum()
            colours = x[i][visible]
            assert (colours == colours[0]).all(), "an object is painted in one solid colour"
            hidden |= masks[k]
        # independent of the masks: the pixels painted in the top object's colour span its box
        painted = np.all(x[i] == x[i][masks[-1]][0], axis=-1)
        rows, cols = np.nonzero(painted)
        np.testing.assert_array_equal(y["boxes"][i, n - 1], [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
    b = y["boxes"][y["valid"]]
    assert (b >= 0).all() and (b <= 64).all() and (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()


def test_object_masks_hand_checked():
    square = shapes.object_mask(0, 10.0, 20.0, 6.0)
    np.testing.assert_array_equal(shapes.mask_box(square), [7, 17, 13, 23])
    assert square.sum() == 36
    circle = shapes.object_mask(1, 32.0, 32.0, 10.0)
    np.testing.assert_array_equal(shapes.mask_box(circle), [27, 27, 37, 37])
    assert 0.7 < circle.sum() / 100 < 0.85  # π/4 of its box
    triangle = shapes.object_mask(2, 32.0, 32.0, 16.0)
    assert triangle[24:28].sum() < triangle[36:40].sum()  # apex up: wider at the bottom
    with pytest.raises(ValueError, match="shapes.object_mask: label must be in 0..3, got 7"):
        shapes.object_mask(7, 1.0, 1.0, 3.0)


def test_padding_mask_and_batches(small):
    x, y = small
    assert y.dtype == shapes.TARGET_DTYPE and x.dtype == np.uint8
    n = y["valid"].sum(1)
    slots = np.arange(shapes.MAX_OBJECTS)[None, :]
    np.testing.assert_array_equal(y["valid"], slots < n[:, None])  # objects first, then padding
    assert (y["labels"][~y["valid"]] == -1).all() and (y["boxes"][~y["valid"]] == 0).all()
    assert set(np.unique(y["labels"][y["valid"]])) == set(range(len(shapes.CLASSES)))
    gts = shapes.unpad(y)
    assert [len(b) for b, _ in gts] == list(n)
    xb, yb = next(jdl.data.batches(x, y, 8, seed=0))
    assert xb.shape == (8, 64, 64, 3) and yb.dtype == shapes.TARGET_DTYPE
    arrays = shapes.as_arrays(yb)
    assert arrays["boxes"].shape == (8, 6, 4) and arrays["labels"].dtype == np.int32
    padded = shapes.pad_targets([np.zeros((2, 4)), np.ones((0, 4))], [[1, 2], []], max_objects=3)
    np.testing.assert_array_equal(padded["valid"], [[True, True, False], [False, False, False]])
    with pytest.raises(ValueError, match="pad_targets: image 0 has 2 boxes and 1 labels"):
        shapes.pad_targets([np.zeros((2, 4))], [[1]])


def test_cache_written_reused_and_regenerated(tmp_path):
    sizes = {"train": 6, "test": 3}
    a = shapes.cached(str(tmp_path), sizes)
    (path,) = [os.path.join(tmp_path, "shapes", f) for f in os.listdir(tmp_path / "shapes")]
    b = shapes.cached(str(tmp_path), sizes)
    assert a["x_train"].tobytes() == b["x_train"].tobytes() and a["y_test"].tobytes() == b["y_test"].tobytes()
    with open(path, "wb") as f:
        f.write(b"PK\x03\x04 not a zip")
    c = shapes.cached(str(tmp_path), sizes)
    assert c["x_test"].tobytes() == a["x_test"].tobytes()


def test_load_splits(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("jdl_data"))
    x, y = jdl.data.load("shapes", "train", data_dir=root)
    xv, yv = jdl.data.load("shapes", "validation", data_dir=root)
    xt, yt = jdl.data.load("shapes", "test", data_dir=root)
    assert (len(x), len(xv), len(xt)) == (4050, 450, 1000)
    assert x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1 and x.shape[1:] == (64, 64, 3)
    first, _ = shapes.generate("train", 2)
    np.testing.assert_array_equal(x[:2], first / np.float32(255))
    assert "shapes" in jdl.data.names()
    small = (yt["boxes"][..., 2] - yt["boxes"][..., 0])[yt["valid"]]
    assert (small < 10).mean() > 0.1  # plenty of small objects


def test_jdl_train_refuses_a_classifier_on_a_detection_set():
    from absl import app

    from jdl.cli.config import TrainConfig
    from jdl.cli.train_detection import detection_command, is_detection

    assert is_detection(TrainConfig(model="mlp", dataset="shapes")) and not is_detection(TrainConfig())
    with pytest.raises(app.UsageError, match="--model=mlp does not read --dataset=shapes"):
        detection_command(TrainConfig(model="mlp", dataset="shapes"))
    with pytest.raises(app.UsageError, match="--model=ssd does not read --dataset=digits"):
        detection_command(TrainConfig(model="ssd", dataset="digits"))
