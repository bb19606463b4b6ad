"""Checkpoints of a whole run on ``orbax.checkpoint.CheckpointManager``: the ``TrainState``
(orbax ``StandardSave``) and jdl's JSON record (orbax ``JsonSave``: versions, config, data
position, history, every leaf's shape, dtype and CRC-32) in one atomic orbax step.

Layout, one directory a step, each either complete or absent::

    <workdir>/checkpoints/<step>/state/...        orbax PyTree of params, state, opt_state, step, key
    <workdir>/checkpoints/<step>/meta/jdl.json    the record
    <workdir>/checkpoints/<step>/metrics/metrics  orbax's copy of the score that picks the best

orbax writes a step into ``<step>.orbax-checkpoint-tmp-*`` and renames it to ``<step>`` when all
of it is on disk (``rename`` is atomic on POSIX file systems), lists the steps, keeps the last K
and the best (its ``LatestN`` and ``BestN`` preservation policies), and removes leftover
temporary directories; in a ``jax.distributed`` job every process calls ``save`` and
``restore``, each process writes its shards, and only the primary process writes the JSON and
renames. orbax does not check what it reads (see ``checkpoint_record``): jdl compares the
restored values with the CRC-32s of the record, and a checkpoint that is unreadable, corrupt or
has no record is named in a warning and the previous one is used.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import numpy as np
from absl import logging

from jdl.train import checkpoint_record as record_lib
from jdl.train.checkpoint_record import CheckpointError, CheckpointMismatch, CheckpointNotFound
from jdl.train.state import TrainState

if TYPE_CHECKING:
    import orbax.checkpoint as ocp

__all__ = ["CHECKPOINTS", "Checkpoint", "CheckpointError", "CheckpointMismatch", "CheckpointNotFound",
           "manager", "restore", "save", "steps"]

CHECKPOINTS = "checkpoints"
STATE = "state"
META = "meta"
RECORD = os.path.join(META, "jdl.json")


class Checkpoint(NamedTuple):
    """A restored checkpoint: the train state, its JSON record and the directory it came from."""

    train_state: TrainState
    meta: dict
    path: str


def _orbax():
    """``orbax.checkpoint``, imported on first use: importing it takes about as long as importing
    jax itself, and a run that writes no checkpoint (or a script that only builds a model) never
    needs it."""
    import orbax.checkpoint
    import orbax.checkpoint.checkpoint_managers  # noqa: F401  (the preservation policies)

    return orbax.checkpoint


def _to_tree(ts: TrainState) -> dict:
    return {"params": ts.params, "state": ts.state, "opt_state": ts.opt_state, "step": ts.step,
            "key": jax.random.key_data(ts.key)}


def score(metric: dict | None) -> float:
    """The number orbax ranks checkpoints by, higher is better: ``-value`` for ``mode='min'``,
    ``value`` for ``'max'``; ``-inf`` when there is no metric or it is not finite (never the best
    while any checkpoint has one)."""
    if not metric or not np.isfinite(metric["value"]):
        return -np.inf
    return float(-metric["value"] if metric.get("mode", "min") == "min" else metric["value"])


def manager(directory: str | os.PathLike, keep: int | None = None, *,
            for_saving: bool = True) -> ocp.CheckpointManager:
    """An orbax ``CheckpointManager`` of ``directory`` with jdl's items and retention: all steps
    (``keep=None``), or the last ``keep`` plus the best by ``metrics['score']`` (see ``score``).
    Saves are synchronous: fit donates the step's buffers to the next step. ``for_saving=False``
    neither creates the directory nor removes orbax's leftover temporary directories (a reader
    leaves the files alone). Close it after use."""
    if keep is not None and keep < 1:
        raise ValueError(f"checkpoint.manager: keep must be >= 1 or None, got {keep}")
    ocp = _orbax()
    policies = ocp.checkpoint_managers
    policy = policies.LatestN(n=None) if keep is None else policies.AnyPreservationPolicy([
        policies.LatestN(n=keep),
        policies.BestN(get_metric_fn=lambda m: m["score"], n=1, keep_checkpoints_without_metrics=False)])
    options = ocp.CheckpointManagerOptions(
        enable_async_checkpointing=False, preservation_policy=policy, best_fn=lambda m: m["score"],
        best_mode="max", cleanup_tmp_directories=for_saving, create=for_saving)
    return ocp.CheckpointManager(
        os.path.abspath(os.fspath(directory)), item_names=(STATE, META), options=options,
        item_handlers={STATE: ocp.StandardCheckpointHandler(), META: ocp.JsonCheckpointHandler("jdl.json")})


def save(directory: str | os.PathLike, ts: TrainState, meta: dict | None = None, *,
         keep: int | None = None, replace: bool = False) -> str:
    """Write ``ts`` and ``meta`` as checkpoint ``<directory>/<step>`` atomically; returns its path.

    The record adds to ``meta``: step, versions, the PRNG key's implementation, and every leaf's
    shape, dtype and CRC-32. An existing complete checkpoint of the same step is left as it is,
    unless ``replace`` or it cannot be read back (then it is deleted and written anew; a crash in
    between leaves the previous step as the newest). With ``keep=K`` only the last K checkpoints
    (by step) and the best one (by ``meta['metric'] = {'name', 'value', 'mode': 'min'|'max'}``)
    are kept. Called by every process of a multi-process job (orbax synchronizes them).
    """
    directory = os.path.abspath(os.fspath(directory))
    step, tree = int(ts.step), _to_tree(ts)
    final = os.path.join(directory, str(step))
    record = dict(meta or {})
    record.update(step=step, versions=record_lib.versions(), key_impl=str(jax.random.key_impl(ts.key)),
                  shapes=record_lib.tree_shapes(tree), crc32=record_lib.crcs(tree))
    with contextlib.closing(manager(directory, keep)) as m:
        if step in m.all_steps():
            if not replace:
                try:
                    _load(m, step, final, None, False)
                    return final
                except CheckpointError as e:
                    logging.warning("jdl checkpoint: replacing %s (%s)", final, e)
            m.delete(step)
        ocp = _orbax()
        m.save(step, args=ocp.args.Composite(**{STATE: ocp.args.StandardSave(tree),
                                                 META: ocp.args.JsonSave(record)}),
               metrics={"score": score(record.get("metric"))}, force=True)
        m.wait_until_finished()
    return final


def steps(directory: str | os.PathLike) -> list[int]:
    """The steps orbax has committed in ``directory`` (not its temporary ones), ascending."""
    if not os.path.isdir(directory):
        return []
    return sorted(int(s) for s in _orbax().path.step.checkpoint_steps(os.path.abspath(os.fspath(directory))))


def _abstract(m: ocp.CheckpointManager, step: int, target: TrainState | None, params_only: bool) -> Any:
    """What to restore into: the target's tree (its shardings), or for a raw or params-only restore
    the saved tree's shapes and dtypes on this process's first device, params and state placed as
    the target's are."""
    if target is not None and not params_only:
        return _to_tree(target)
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    tree = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=device),
                        m.item_metadata(step)[STATE].tree)
    if target is not None:
        tree = {**tree, "params": target.params, "state": target.state}
    return tree


def _load(m: ocp.CheckpointManager, step: int, path: str, target: TrainState | None,
          params_only: bool) -> Checkpoint:
    record = record_lib.read(os.path.join(path, RECORD))
    if target is not None:
        record_lib.check_shapes(record, _to_tree(target), path, ("params", "state") if params_only else ())
    mine = record_lib.versions()
    differ = {k: (v, mine.get(k)) for k, v in record.get("versions", {}).items() if mine.get(k) != v}
    if differ:
        logging.warning("jdl checkpoint %s was written with other versions (saved, now): %s", path, differ)
    state_path = os.path.join(path, STATE)
    try:
        ocp = _orbax()
        args = ocp.args.StandardRestore(_abstract(m, step, target, params_only))
        tree = m.restore(step, args=ocp.args.Composite(**{STATE: args}))[STATE]
    except Exception as e:  # orbax/tensorstore errors vary; name the checkpoint and the cause
        cause = str(e).split(" [tensorstore_spec")[0]  # the spec that follows is ~2 KB of JSON
        raise CheckpointError(f"{state_path} could not be read: {type(e).__name__}: {cause}") from e
    record_lib.check_crcs(record, tree, state_path)
    key = jax.random.wrap_key_data(tree["key"], impl=record["key_impl"])
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
    result has its exact tree structure and each leaf the target leaf's sharding (so a checkpoint
    written on 8 devices loads on 1 and back), after checking every shape and dtype: a difference
    raises ``CheckpointMismatch`` listing the paths. ``params_only`` checks and loads only params
    and state (fine-tuning or evaluation with another optimizer). Without a target the trees are
    the saved ones, on this process's first device. A checkpoint that is unreadable, corrupt or
    has no record is named in a warning and the previous one is tried; ``CheckpointNotFound``
    when there is none, ``CheckpointError`` when none is readable.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(os.path.join(path, STATE)) or os.path.exists(os.path.join(path, RECORD)):
        directory, found = os.path.dirname(path), [int(os.path.basename(path))]
    else:
        directory = os.path.join(path, CHECKPOINTS) if os.path.isdir(os.path.join(path, CHECKPOINTS)) else path
        found = [s for s in steps(directory) if step is None or s == step]
    if not found:
        raise CheckpointNotFound(f"no checkpoint{'' if step is None else f' of step {step}'} in {path} "
                                 f"(expected {os.path.join(directory, '<step>', RECORD)})")
    problems = []
    with contextlib.closing(manager(directory, for_saving=False)) as m:
        for s in reversed(found):
            try:
                return _load(m, s, os.path.join(directory, str(s)), target, params_only)
            except CheckpointMismatch:
                raise
            except CheckpointError as e:
                problems.append(str(e))
                logging.warning("jdl checkpoint: %s; falling back to the previous one", e)
    raise CheckpointError("no complete checkpoint could be read:\n  " + "\n  ".join(problems))
