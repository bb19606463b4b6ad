"""MNIST / Fashion-MNIST IDX loaders on tiny files written here, byte by byte, in the IDX format."""

import gzip
import os
import struct

import numpy as np
import pytest

import jdl
from jdl.data.files import DataFileError


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    """IDX by hand: 0x00 0x00, type code, ndim, big-endian uint32 dims, big-endian data."""
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_split(folder, prefix, images, labels, gz=False):
    os.makedirs(folder, exist_ok=True)
    for kind, arr in (("images-idx3-ubyte", images), ("labels-idx1-ubyte", labels)):
        raw = idx_bytes(arr)
        name = f"{prefix}-{kind}" + (".gz" if gz else "")
        with open(os.path.join(folder, name), "wb") as f:
            f.write(gzip.compress(raw) if gz else raw)


@pytest.fixture
def fake(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 0, 9, 1, 7], np.uint8)
    t_images = rng.integers(0, 256, size=(2, 28, 28), dtype=np.uint8)
    t_labels = np.array([4, 2], np.uint8)
    return tmp_path, images, labels, t_images, t_labels


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("gz", [False, True])
def test_reads_plain_and_gzipped_idx(fake, name, gz):
    root, images, labels, t_images, t_labels = fake
    write_split(root / name, "train", images, labels, gz=gz)
    write_split(root / name, "t10k", t_images, t_labels, gz=gz)
    x, y = jdl.data.load(name, "train", data_dir=str(root), validation_fraction=0)  # as published
    xt, yt = jdl.data.load(name, "test", data_dir=str(root))
    assert x.shape == (5, 28, 28, 1) and x.dtype == np.float32 and y.dtype == np.int32
    np.testing.assert_array_equal(x[..., 0], images / np.float32(255))
    np.testing.assert_array_equal(y, labels)
    np.testing.assert_array_equal(yt, t_labels)
    assert xt.shape == (2, 28, 28, 1) and x[0, 0, 0, 0] == images[0, 0, 0] / np.float32(255)


def test_jdl_data_env_var_is_the_default_root(fake, monkeypatch):
    root, images, labels, *_ = fake
    write_split(root / "mnist", "train", images, labels)
    monkeypatch.setenv("JDL_DATA", str(root))
    np.testing.assert_array_equal(jdl.data.load("mnist", "train", validation_fraction=0)[1], labels)


def test_missing_files_say_which_files_go_where(tmp_path):
    folder = os.path.join(str(tmp_path), "mnist")
    with pytest.raises(FileNotFoundError) as e:
        jdl.data.load("mnist", "train", data_dir=str(tmp_path))
    message = str(e.value)
    assert f"missing {os.path.join(folder, 'train-images-idx3-ubyte')}" in message
    assert f"Put these files in {folder}" in message
    for f in ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert f in message
    assert "--data_dir" in message and "JDL_DATA" in message and "jdl data download mnist" in message


def corrupt_cases(images, labels):
    good_images, good_labels = idx_bytes(images), idx_bytes(labels)
    return {
        "truncated": (good_images[:-7], good_labels, r"train-images-idx3-ubyte: truncated: header says shape \(5, 28, 28\) of uint8 = 3920 data bytes, file has 3913"),
        "trailing": (good_images + b"\0", good_labels, "has trailing bytes"),
        "wrong magic": (good_labels, good_labels, r"train-images-idx3-ubyte: magic number 0x00000801 \(2049\), expected 0x00000803 \(2051\)"),
        "not idx": (b"\x89PNG\r\n\x1a\n" + good_images[8:], good_labels, "magic number 0x89504e47"),
        "short header": (good_images[:9], good_labels, "truncated IDX header: 3 dimensions need 16 bytes, file has 9"),
        "count mismatch": (good_images, idx_bytes(labels[:4]), "holds 5 images but .* holds 4 labels"),
        "bad label": (good_images, idx_bytes(np.array([0, 1, 2, 3, 12], np.uint8)), r"label 12 is outside 0..9"),
        "wrong size": (idx_bytes(images[:, :27, :]), good_labels, "images are 27×28, expected 28×28"),
    }


@pytest.mark.parametrize("case", ["truncated", "trailing", "wrong magic", "not idx", "short header",
                                  "count mismatch", "bad label", "wrong size"])
def test_corrupt_files_are_refused_naming_file_and_fault(fake, case):
    root, images, labels, *_ = fake
    raw_images, raw_labels, pattern = corrupt_cases(images, labels)[case]
    folder = root / "mnist"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte").write_bytes(raw_images)
    (folder / "train-labels-idx1-ubyte").write_bytes(raw_labels)
    with pytest.raises(DataFileError, match=pattern):
        jdl.data.load("mnist", "train", data_dir=str(root))


def test_truncated_gzip_is_refused(fake):
    root, images, labels, *_ = fake
    folder = root / "mnist"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images))[:-20])
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    with pytest.raises(DataFileError, match=r"train-images-idx3-ubyte.gz: corrupt or truncated gzip file"):
        jdl.data.load("mnist", "train", data_dir=str(root))


def test_idx_other_types_round_trip(tmp_path):
    from jdl.data.idx import read_idx
    a = np.arange(-6, 6, dtype=np.int16).reshape(3, 4)
    path = tmp_path / "a.idx"
    path.write_bytes(idx_bytes(a, code=0x0B))
    got = read_idx(str(path))
    np.testing.assert_array_equal(got, a)
    assert got.dtype == np.int16
