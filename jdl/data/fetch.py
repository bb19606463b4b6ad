"""``jdl data download NAME``: the one place in jdl that touches the network.

Nothing calls it by default: loaders only read local folders. It fetches the published files
into the folder the loader reads, checks each against its published MD5 before keeping it,
and unpacks CIFAR-10's archive with tarfile's 'data' filter (no paths outside the folder).
``mnist1d`` needs no network: "downloading" it generates and caches it.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import urllib.request
from typing import Callable

from jdl.data import mnist1d_data
from jdl.data.cifar import cifar10
from jdl.data.files import DataFileError, data_root, md5

Fetch = Callable[[str, str], None]

# (url, file name, published MD5); the MD5s are those torchvision and the data sets' pages publish.
SOURCES: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "mnist": ("mnist", [
        ("https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        ("https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        ("https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        ("https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    ]),
    "fashion_mnist": ("fashion_mnist", [
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    ]),
    "cifar10": ("cifar10", [
        ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),
    ]),
}
DOWNLOADABLE = ("cifar10", "fashion_mnist", "mnist", "mnist1d")


def urllib_fetch(url: str, path: str) -> None:
    """Copy ``url`` to the file ``path`` (the default ``fetch``)."""
    with urllib.request.urlopen(url, timeout=60) as response, open(path, "wb") as f:
        shutil.copyfileobj(response, f)


def download(name: str, data_dir: str | None = None, fetch: Fetch = urllib_fetch,
             log: Callable[[str], None] = print) -> str:
    """Fetch data set ``name`` into ``<data root>/<name>/``, verify it, and return that folder.

    A file already there with the right MD5 is kept; each new file is written under a temporary
    name and renamed only once its MD5 matches, so an interrupted or corrupt download never
    leaves a file the loaders would read. ``fetch(url, path)`` is injectable for tests.
    """
    if name not in DOWNLOADABLE:
        raise ValueError(f"jdl data download: unknown data set {name!r}; downloadable: {', '.join(DOWNLOADABLE)}")
    if name == "mnist1d":
        mnist1d_data.cached(data_dir)
        folder = os.path.dirname(os.path.join(data_root(data_dir), mnist1d_data.FILE))
        log(f"mnist1d: generated offline (no network) and cached in {folder}")
        return folder
    sub, files = SOURCES[name]
    folder = os.path.join(data_root(data_dir), sub)
    os.makedirs(folder, exist_ok=True)
    fetched = False
    for url, file_name, expected in files:
        path = os.path.join(folder, file_name)
        if os.path.isfile(path) and md5(path) == expected:
            log(f"{name}: {path} already present, MD5 verified")
            continue
        fetched = True
        log(f"{name}: fetching {url}")
        tmp = path + ".part"
        fetch(url, tmp)
        got = md5(tmp)
        if got != expected:
            os.remove(tmp)
            raise DataFileError(f"{name}: {url} has MD5 {got}, expected {expected}; nothing was kept")
        os.replace(tmp, path)
    if name == "cifar10" and (fetched or not os.path.isdir(os.path.join(folder, "cifar-10-batches-py"))):
        with tarfile.open(os.path.join(folder, files[0][1]), "r:gz") as archive:
            archive.extractall(folder, filter="data")  # → cifar10/cifar-10-batches-py/
        cifar10("test", data_dir)  # check what was unpacked
    log(f"{name}: ready in {folder}")
    return folder
