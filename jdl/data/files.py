"""Where local data sets live, and the errors that say what to put there.

The data root is, in order: the ``data_dir`` argument (``jdl train --data_dir=...``), the
environment variable ``JDL_DATA``, else ``$XDG_CACHE_HOME/jdl`` (``~/.cache/jdl``). Each data
set has its own folder under the root (``<root>/mnist/``, ``<root>/cifar10/...``); see
``docs/data.md``. Nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import os
from typing import Callable, Sequence

ENV_VAR = "JDL_DATA"


class DataFileError(ValueError):
    """A data file is missing, truncated or not in the format its name promises."""


def cache_root() -> str:
    """jdl's cache folder: ``$XDG_CACHE_HOME/jdl``, else ``~/.cache/jdl``."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "jdl")


def data_root(data_dir: str | None = None) -> str:
    """The folder data sets are read from: ``data_dir``, else ``$JDL_DATA``, else the cache."""
    if data_dir:
        return os.path.expanduser(data_dir)
    if os.environ.get(ENV_VAR):
        return os.path.expanduser(os.environ[ENV_VAR])
    return cache_root()


def find_file(folder: str, name: str, dataset: str, wanted: Sequence[str]) -> str:
    """The path of ``name`` (or ``name.gz``) in ``folder``; when neither exists, raise
    ``FileNotFoundError`` listing every file ``dataset`` needs there and how to get them."""
    for candidate in (name, name + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    listing = "\n".join(f"  {w}" for w in wanted)
    raise FileNotFoundError(
        f"{dataset}: missing {os.path.join(folder, name)} (or .gz). Put these files in {folder}:\n"
        f"{listing}\n(each may be gzipped). The folder sits under the data root, chosen by --data_dir, "
        f"else ${ENV_VAR}, else ~/.cache/jdl; `jdl data download {dataset}` fetches the files where a "
        "network exists (see docs/data.md).")


def md5(path: str) -> str:
    """Hex MD5 digest of a file, read in 1 MiB chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cached_npz(path: str, generate: Callable[[], dict], is_valid: Callable[[dict], bool]) -> dict:
    """Arrays of a generated data set: read from the .npz at ``path`` when it holds a copy that
    ``is_valid`` accepts, else ``generate()``-d and written there atomically (a folder that cannot
    be written is skipped; a corrupt file is regenerated)."""
    import zipfile

    import numpy as np

    if os.path.isfile(path):
        try:
            with np.load(path) as f:
                arrays = {k: f[k] for k in f.files}
            if is_valid(arrays):
                return arrays
        except (ValueError, OSError, zipfile.BadZipFile, EOFError):
            pass  # a corrupt cache is regenerated below
    arrays = generate()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass
    return arrays
