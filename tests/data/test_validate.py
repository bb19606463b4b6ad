"""Bad data is refused before training, naming the data set and the index of the first bad
example: non-finite features, labels out of range or not integers, examples of other shapes."""

import numpy as np
import pytest

import jdl
from jdl.data.validate import check_examples
from jdl.losses import softmax_cross_entropy
from jdl.train import fit


def _fit(train, test=None, model=None):  # test: passed as test_data
    return fit(model or jdl.models.mlp([4, 3]), softmax_cross_entropy, jdl.optim.sgd(0.1), train, test_data=test,
               epochs=1, batch_size=4, progress=False)


def _data(n=12, d=5):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, d)).astype(np.float32), (np.arange(n) % 3).astype(np.int32)


def test_non_finite_feature_names_example_and_position():
    x, y = _data()
    x[7, 2] = np.nan
    x[9, 0] = np.inf
    with pytest.raises(ValueError, match=r"fit: train_data x\[7\] is not finite \(nan\) at position \(2,\); "
                                         r"2 of 12 examples hold NaN or ±inf"):
        _fit((x, y))


def test_label_out_of_range_names_index_and_classes():
    x, y = _data()
    y[5] = 3  # the model has 3 outputs: labels 0..2
    with pytest.raises(ValueError, match=r"fit: train_data y\[5\] = 3 is not a class label: the model has "
                                         r"n_classes=3, so labels must be in 0..2"):
        _fit((x, y))
    y[5] = -1
    with pytest.raises(ValueError, match=r"fit: test_data y\[5\] = -1"):
        _fit(_data(), (x, y))


def test_float_labels_and_wrong_label_shape_are_refused():
    x, y = _data()
    with pytest.raises(TypeError, match=r"check_examples y must hold integer class labels, got dtype float32"):
        check_examples("check_examples", (x, y.astype(np.float32)), n_classes=3)
    sequences = np.zeros((12, 2, 5), np.float32)  # (N, T=2, d): the model outputs (B, 2, 3)
    with pytest.raises(ValueError, match=r"fit: train_data y: labels have shape \(3,\) per example but the "
                                         r"model outputs \(2, 3\) \(expected labels of shape \(2,\)\)"):
        _fit((sequences, np.zeros((12, 3), np.int32)), model=jdl.models.mlp([4, 3], flatten=False))


def test_examples_of_other_shapes_are_refused():
    x, y = _data()
    ragged = [xi for xi in x]
    ragged[4] = ragged[4][:3]
    with pytest.raises(ValueError, match=r"fit: train_data x\[4\] has shape \(3,\) but fit: train_data x\[0\] has \(5,\)"):
        _fit((ragged, y))
    with pytest.raises(ValueError, match=r"fit: test_data examples have shape \(4,\) but train_data's have \(5,\)"):
        _fit((x, y), (x[:, :4], y))
    with pytest.raises(ValueError, match="fit: train_data has 12 inputs but 11 targets"):
        _fit((x, y[:11]))


def test_good_data_passes_unchanged():
    x, y = _data()
    gx, gy = check_examples("data", (list(x), list(y)), n_classes=3)
    np.testing.assert_array_equal(gx, x)
    np.testing.assert_array_equal(gy, y)
