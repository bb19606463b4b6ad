"""jdl's JSON record of a checkpoint and the checks made with it: the exceptions, the shapes and
dtypes of every leaf, a CRC-32 of every leaf's values, and the software versions.

orbax-checkpoint does not verify the array data it reads. Tried with orbax-checkpoint 0.12.8
(OCDBT storage): a byte changed inside a saved array's data file restores silently as another
value, and a data file cut by its last byte restores without an error. Only the OCDBT b-tree
nodes carry a CRC-32C (so a small array stored inline in a node is checked), and a larger
truncation raises a TensorStore read error. So the record keeps a CRC-32 of each leaf's bytes,
computed before the save and again on the restored values: it checks exactly what training
resumes from, whatever orbax's file layout.
"""

from __future__ import annotations

import json
import os
import sys
import zlib
from typing import Any

import jax
import numpy as np

from jdl.core import path_str


class CheckpointError(ValueError):
    """A checkpoint is missing, incomplete, corrupt, or does not fit the model."""


class CheckpointNotFound(CheckpointError, FileNotFoundError):
    """No checkpoint at all where one was looked for."""


class CheckpointMismatch(CheckpointError):
    """A complete checkpoint whose shapes differ from the model's (never skipped silently)."""


def tree_shapes(tree: Any) -> dict[str, list]:
    """{path: [shape, dtype]} of every leaf of ``tree``, in flattening order."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {path_str(p): [list(np.shape(x)), str(x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype)]
            for p, x in leaves}


def versions() -> dict[str, str]:
    """The software a checkpoint was written with: jdl, jax, jaxlib, orbax, numpy, python."""
    import jaxlib
    import orbax.checkpoint as ocp

    import jdl

    return {"jdl": jdl.__version__, "jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "orbax": getattr(ocp, "__version__", "?"), "numpy": np.__version__,
            "python": sys.version.split()[0]}


def _leaf_crc(x: Any) -> int | None:
    """CRC-32 of a leaf's bytes; None for an array sharded over other processes (no process holds
    all of it, so none can check it; a replicated one is checked from this process's copy)."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        if not x.is_fully_replicated:
            return None
        x = x.addressable_data(0)
    return zlib.crc32(np.ascontiguousarray(np.asarray(x)).tobytes())


def crcs(tree: Any) -> dict[str, int | None]:
    """{path: CRC-32 of the leaf's values (C order)} for every leaf of ``tree``."""
    return {path_str(p): _leaf_crc(x) for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def check_crcs(record: dict, tree: Any, where: str) -> None:
    """Raise ``CheckpointError`` naming the first leaf of the restored ``tree`` whose CRC-32
    differs from the one in ``record`` (leaves the record does not cover are not checked)."""
    saved = record.get("crc32", {})
    for path, crc in crcs(tree).items():
        if crc is not None and saved.get(path) is not None and saved[path] != crc:
            raise CheckpointError(f"{where}: {path} is corrupt: its CRC-32 differs from the one written")


def read(path: str) -> dict:
    """The record at ``path`` (a ``<step>/meta/jdl.json`` file); ``CheckpointError`` naming it when
    it is missing or is not a record."""
    if not os.path.exists(path):
        raise CheckpointError(f"{path} is missing (the checkpoint was never finished)")
    try:
        with open(path) as f:
            record = json.load(f)
        record["shapes"], record["crc32"]  # noqa: B018 (both must be there)
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path} is not a valid checkpoint record ({type(e).__name__}: {e})") from None
    return record


def check_shapes(record: dict, target: Any, path: str, prefixes: tuple[str, ...] = ()) -> None:
    """Raise ``CheckpointMismatch`` listing every path whose shape or dtype differs between the
    checkpoint's record and ``target`` (a tree like ``_to_tree``'s), or that only one side has.
    ``prefixes`` limits the comparison to paths starting with them (e.g. ('params', 'state'))."""
    saved = {k: v for k, v in record["shapes"].items() if not prefixes or k.startswith(prefixes)}
    model = {k: v for k, v in tree_shapes(target).items() if not prefixes or k.startswith(prefixes)}
    diffs = []
    for k in sorted(set(saved) | set(model)):
        if k not in model:
            diffs.append(f"  {k}: in the checkpoint {tuple(saved[k][0])}, not in the model")
        elif k not in saved:
            diffs.append(f"  {k}: in the model {tuple(model[k][0])}, not in the checkpoint")
        elif saved[k] != model[k]:
            diffs.append(f"  {k}: checkpoint {tuple(saved[k][0])} {saved[k][1]}, "
                         f"model {tuple(model[k][0])} {model[k][1]}")
    if diffs:
        config = record.get("config")
        raise CheckpointMismatch(
            f"checkpoint {path} does not fit this model; {len(diffs)} paths differ:\n" + "\n".join(diffs)
            + (f"\nThe checkpoint was written with config {config}." if config else ""))
