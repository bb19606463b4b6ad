"""Checkpoints of a whole run: the ``TrainState`` written with orbax-checkpoint, plus a JSON record
(versions, config, data position, history, a manifest of every file with its size and CRC-32).

Layout, one directory a step, each either complete or absent::

    <workdir>/checkpoints/<step>/state/...   orbax PyTree of params, state, opt_state, step, key
    <workdir>/checkpoints/<step>/jdl.json    the record; written last

A checkpoint is written into ``.tmp-<step>`` and renamed to ``<step>`` only when the orbax part
and the record are both on disk, so a process killed at any point leaves either the previous
checkpoints untouched or a new complete one (``rename`` is atomic on POSIX file systems). On
restore, a checkpoint whose record is missing or whose files are missing, truncated or altered is
named and skipped, and the previous complete one is used.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import zlib
from typing import Any, NamedTuple

import jax
import numpy as np
from absl import logging

from jdl.core import path_str
from jdl.train.state import TrainState

RECORD = "jdl.json"
STATE = "state"
CHECKPOINTS = "checkpoints"


class CheckpointError(ValueError):
    """A checkpoint is missing, incomplete, corrupt, or does not fit the model."""


class CheckpointNotFound(CheckpointError, FileNotFoundError):
    """No checkpoint at all where one was looked for."""


class CheckpointMismatch(CheckpointError):
    """A complete checkpoint whose shapes differ from the model's (never skipped silently)."""


class Checkpoint(NamedTuple):
    """A restored checkpoint: the train state, its JSON record and the directory it came from."""

    train_state: TrainState
    meta: dict
    path: str


def tree_shapes(tree: Any) -> dict[str, list]:
    """{path: [shape, dtype]} of every leaf of ``tree``, in flattening order."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {path_str(p): [list(np.shape(x)), str(np.asarray(x).dtype if not hasattr(x, "dtype") else x.dtype)]
            for p, x in leaves}


def versions() -> dict[str, str]:
    """The software a checkpoint was written with: jdl, jax, jaxlib, orbax, numpy, python."""
    import jaxlib
    import orbax.checkpoint as ocp

    import jdl

    return {"jdl": jdl.__version__, "jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "orbax": getattr(ocp, "__version__", "?"), "numpy": np.__version__,
            "python": sys.version.split()[0]}


def _to_tree(ts: TrainState) -> dict:
    return {"params": ts.params, "state": ts.state, "opt_state": ts.opt_state, "step": ts.step,
            "key": jax.random.key_data(ts.key)}


def _manifest(root: str) -> dict[str, list[int]]:
    files = {}
    for dirpath, _, names in os.walk(root):
        for name in sorted(names):
            full = os.path.join(dirpath, name)
            with open(full, "rb") as f:
                data = f.read()
            files[os.path.relpath(full, root)] = [len(data), zlib.crc32(data)]
    return files


def _checkpointer():
    import orbax.checkpoint as ocp

    return ocp.Checkpointer(ocp.StandardCheckpointHandler())


def save(directory: str | os.PathLike, ts: TrainState, meta: dict | None = None, *,
         keep: int | None = None, replace: bool = False) -> str:
    """Write ``ts`` and ``meta`` as checkpoint ``<directory>/<step>`` atomically; returns its path.

    The record adds to ``meta``: step, versions, the tree's shapes and dtypes, the PRNG key's
    implementation and a manifest {file: [bytes, crc32]}. An existing complete checkpoint of the
    same step is left as it is, unless ``replace`` (then it is swapped for the new one by two
    renames; a crash between them leaves the previous step as the newest). With ``keep=K``,
    only the last K checkpoints (by step) and the best one (``meta['metric']``, see
    :func:`prune`) are kept.
    """
    directory = os.fspath(directory)
    step = int(ts.step)
    final = os.path.join(directory, str(step))
    if os.path.isdir(final) and not replace:
        try:
            _read_record(final, verify=True)
            return final
        except CheckpointError as e:
            logging.warning("jdl checkpoint: replacing %s (%s)", final, e)
            shutil.rmtree(final)
    tmp = os.path.join(directory, f".tmp-{step}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    _checkpointer().save(os.path.abspath(os.path.join(tmp, STATE)), _to_tree(ts))
    record = dict(meta or {})
    record.update(step=step, time=time.time(), versions=versions(), key_impl=str(jax.random.key_impl(ts.key)),
                  shapes=tree_shapes(_to_tree(ts)), files=_manifest(os.path.join(tmp, STATE)))
    with open(os.path.join(tmp, RECORD), "w") as f:
        json.dump(record, f)
        f.flush()
        os.fsync(f.fileno())
    if os.path.isdir(final):
        old = os.path.join(directory, f".old-{step}")
        shutil.rmtree(old, ignore_errors=True)
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old)
    else:
        os.rename(tmp, final)  # the commit point
    if keep is not None:
        prune(directory, keep)
    return final


def steps(directory: str | os.PathLike) -> list[int]:
    """The steps that have a checkpoint directory (complete or not) in ``directory``, ascending."""
    if not os.path.isdir(directory):
        return []
    return sorted(int(n) for n in os.listdir(directory) if n.isdigit())


def prune(directory: str | os.PathLike, keep: int) -> list[int]:
    """Delete all but the last ``keep`` checkpoints and the best one; returns the steps kept.

    The best is the one whose record's ``metric = {'name', 'value', 'mode'}`` is lowest
    (mode 'min') or highest ('max'); leftover ``.tmp-*``/``.old-*`` directories are removed too.
    """
    if keep < 1:
        raise ValueError(f"checkpoint.prune: keep must be >= 1, got {keep}")
    directory = os.fspath(directory)
    all_steps = steps(directory)
    kept = set(all_steps[-keep:])
    best = None
    for s in all_steps:
        try:
            metric = _read_record(os.path.join(directory, str(s))).get("metric")
        except CheckpointError:
            continue
        if metric and np.isfinite(metric["value"]):
            value = metric["value"] if metric.get("mode", "min") == "min" else -metric["value"]
            if best is None or value < best[0]:
                best = (value, s)
    if best is not None:
        kept.add(best[1])
    for s in all_steps:
        if s not in kept:
            shutil.rmtree(os.path.join(directory, str(s)), ignore_errors=True)
    for name in os.listdir(directory):
        if name.startswith((".tmp-", ".old-")):
            shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
    return sorted(kept)


def _read_record(path: str, verify: bool = False) -> dict:
    record_path = os.path.join(path, RECORD)
    if not os.path.exists(record_path):
        raise CheckpointError(f"{record_path} is missing (the checkpoint was never finished)")
    try:
        with open(record_path) as f:
            record = json.load(f)
        files = record["files"]
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{record_path} is not a valid checkpoint record ({e})") from None
    if verify:
        root = os.path.join(path, STATE)
        for rel, (size, crc) in files.items():
            full = os.path.join(root, rel)
            if not os.path.exists(full):
                raise CheckpointError(f"{full} is missing")
            with open(full, "rb") as f:
                data = f.read()
            if len(data) != size:
                what = "truncated" if len(data) < size else "longer than written"
                raise CheckpointError(f"{full} is {what}: {len(data)} bytes, {size} written")
            if zlib.crc32(data) != crc:
                raise CheckpointError(f"{full} is corrupt: its CRC-32 differs from the one written")
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


def _load(path: str, target: TrainState | None, params_only: bool) -> Checkpoint:
    record = _read_record(path, verify=True)
    if target is not None:
        check_shapes(record, _to_tree(target), path, ("params", "state") if params_only else ())
    mine = versions()
    differ = {k: (v, mine.get(k)) for k, v in record.get("versions", {}).items() if mine.get(k) != v}
    if differ:
        logging.warning("jdl checkpoint %s was written with other versions (saved, now): %s", path, differ)
    state_path = os.path.abspath(os.path.join(path, STATE))
    try:
        full = target is not None and not params_only
        tree = _checkpointer().restore(state_path, _to_tree(target) if full else None)
    except Exception as e:  # orbax/tensorstore errors vary; name the checkpoint and the cause
        raise CheckpointError(f"{state_path} could not be read: {type(e).__name__}: {e}") from e
    key = jax.random.wrap_key_data(np.asarray(tree["key"]), impl=record["key_impl"])
    params, state = tree["params"], tree["state"]
    if target is not None:  # give params/state the model's exact tree structure
        params = jax.tree.unflatten(jax.tree.structure(target.params), jax.tree.leaves(params))
        state = jax.tree.unflatten(jax.tree.structure(target.state), jax.tree.leaves(state))
    ts = TrainState(params, state, tree["opt_state"], jax.numpy.asarray(tree["step"]), key)
    return Checkpoint(ts, record, path)


def restore(path: str | os.PathLike, target: TrainState | None = None, *, step: int | None = None,
            params_only: bool = False) -> Checkpoint:
    """Load the newest complete checkpoint under ``path`` (a workdir, its ``checkpoints/``
    folder, or one ``<step>`` folder); ``step`` picks one.

    With ``target`` (a freshly initialized ``TrainState`` of the same model and optimizer) the
    result has its exact tree structure, after checking every shape and dtype: a difference
    raises ``CheckpointMismatch`` listing the paths. ``params_only`` checks and loads only
    params and state (fine-tuning or evaluation with another optimizer). A checkpoint that is
    incomplete, truncated or corrupt is named in a warning and the previous one is tried;
    ``CheckpointNotFound`` when there is none, ``CheckpointError`` when none is readable.
    """
    path = os.fspath(path)
    if os.path.exists(os.path.join(path, RECORD)) or os.path.isdir(os.path.join(path, STATE)):
        candidates = [path]
    else:
        directory = os.path.join(path, CHECKPOINTS) if os.path.isdir(os.path.join(path, CHECKPOINTS)) else path
        found = steps(directory)
        if step is not None:
            found = [s for s in found if s == step]
        if not found:
            raise CheckpointNotFound(f"no checkpoint{'' if step is None else f' of step {step}'} in {path} "
                                     f"(expected {os.path.join(directory, '<step>', RECORD)})")
        candidates = [os.path.join(directory, str(s)) for s in reversed(found)]
    problems = []
    for candidate in candidates:
        try:
            return _load(candidate, target, params_only)
        except CheckpointMismatch:
            raise
        except CheckpointError as e:
            problems.append(str(e))
            logging.warning("jdl checkpoint: %s; falling back to the previous one", e)
    raise CheckpointError("no complete checkpoint could be read:\n  " + "\n  ".join(problems))
