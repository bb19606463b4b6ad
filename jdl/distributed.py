"""Data parallelism with JAX's own SPMD engine: a device mesh, a replicated train state, a
batch sharded on its leading axis.

The jitted step does not change when going from 1 to N devices; only its inputs do:

    mesh = data_mesh()                              # 1-D, axis "data", N devices
    check_batch_size(mesh, batch_size)              # B divisible by N
    ts = replicate(mesh, ts)                        # every leaf on every device (or shard_params: FSDP)
    rows = local_rows(batch_size, mesh)             # the rows this process loads
    batch = shard_batch(mesh, (x[rows], y[rows]))   # (B, ...) split as N × (B/N, ...)
    ts, metrics = step(ts, batch)                   # jax.jit(step), unchanged

XLA partitions the step: each device computes the forward and backward pass of its B/N rows,
and every reduction over the batch axis (the loss's mean, BatchNorm's μ and σ²) becomes an
all-reduce, so gradients and batch statistics are those of the whole global batch.

Several processes (one per host, or several on one machine): call ``initialize`` first, before
any other JAX call; then ``jax.devices()`` lists every process's devices, ``data_mesh`` spans
them all, each process loads only its ``local_rows`` and ``shard_batch`` assembles the global
batch without moving data between hosts. See ``docs/distributed.md``.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"


def data_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D mesh over the first ``num_devices`` of ``jax.devices()`` (every device by default),
    its one axis named ``"data"``.

    With several processes ``jax.devices()`` is the global list, ordered by process, so the mesh
    spans hosts and process i's devices hold the i-th block of each batch.

    Shapes: mesh.devices (N,).
    """
    devices = jax.devices()
    if num_devices is None:
        num_devices = len(devices)
    if isinstance(num_devices, bool) or not isinstance(num_devices, int) or num_devices < 1:
        raise ValueError(f"data_mesh: num_devices must be a positive int or None, got {num_devices!r}")
    if num_devices > len(devices):
        raise ValueError(
            f"data_mesh: asked for {num_devices} devices but only {len(devices)} exist "
            f"({devices[0].platform}, {jax.process_count()} process(es)); on CPU, set "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={num_devices} before JAX starts")
    return Mesh(np.array(devices[:num_devices]), (DATA_AXIS,))


def _replicate_leaf(sharding: NamedSharding, leaf: Any) -> jax.Array:
    if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        data = _replicate_leaf(sharding, jax.random.key_data(leaf))  # (..., key words) uint32
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaf))
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
        return jax.device_put(leaf, sharding)  # already global: a reshard among the same devices
    host = np.asarray(leaf)
    # From host memory to each local device; no cross-process check or transfer (device_put
    # would all-gather every leaf to assert that the processes agree).
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def replicate(mesh: Mesh, tree: Any) -> Any:
    """Place every leaf of ``tree`` whole on every device of ``mesh`` (``NamedSharding(mesh, P())``).

    Leaves may be numpy arrays, Python scalars, jax arrays (on any device) and typed PRNG key
    arrays (``jax.random.key``); the tree's structure is kept, so a ``TrainState`` comes back a
    ``TrainState``. With several processes each must pass the same values (as it does after
    initializing from the same seed); this is not checked.

    Shapes: each leaf keeps its shape; ``leaf.sharding.is_fully_replicated``.
    """
    sharding = NamedSharding(mesh, P())
    return jax.tree.map(lambda leaf: _replicate_leaf(sharding, leaf), tree)


def _shard_leaf(mesh: Mesh, leaf: Any) -> jax.Array:
    shape, n = np.shape(leaf), mesh.size
    if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        return _replicate_leaf(NamedSharding(mesh, P()), leaf)
    axes = [a for a in range(len(shape)) if shape[a] % n == 0 and shape[a] >= n]
    if not axes:  # scalars (Adam's count), small or indivisible leaves stay whole
        return _replicate_leaf(NamedSharding(mesh, P()), leaf)
    axis = max(axes, key=lambda a: shape[a])  # the longest divisible axis
    spec = P(*(DATA_AXIS if a == axis else None for a in range(len(shape))))
    host = np.asarray(leaf)
    return jax.make_array_from_callback(shape, NamedSharding(mesh, spec), lambda index: host[index])


def shard_params(mesh: Mesh, tree: Any) -> Any:
    """Fully sharded data parallelism (FSDP/ZeRO-3 style): each leaf split over the ``"data"``
    axis along its longest axis divisible by N, so a device holds 1/N of it; leaves with no
    such axis (scalars, biases of odd size, PRNG keys) are replicated. Give it params and
    optimizer state together (Adam's m and v share the params' shapes, so they split alike).

    Under ``jax.jit`` XLA gathers each weight where a layer needs it whole and reduce-scatters
    its gradient, so the step's values equal the replicated step's; only memory per device and
    communication change. ``jdl.train.fit(mesh=..., fsdp=True)`` places its train state so.

    Shapes: each leaf keeps its global shape; ``leaf.sharding.spec`` names the split axis.
    """
    return jax.tree.map(lambda leaf: _shard_leaf(mesh, leaf), tree)


def check_batch_size(mesh: Mesh, batch_size: int, what: str = "batch_size") -> None:
    """Raise ``ValueError`` unless ``batch_size`` splits evenly over the mesh's devices.

    Every device gets B/N rows, so B must be a positive multiple of N; the message names the
    nearest multiples. ``what`` names the quantity in the message (``"eval_batch_size"``).
    ``mesh`` may be a ``jax.sharding.AbstractMesh``: only its size matters.
    """
    n = mesh.size
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"{what} must be a positive int, got {batch_size!r}")
    if batch_size % n:
        below, above = (batch_size // n) * n, (batch_size // n + 1) * n
        nearest = f"{below} or {above}" if below else f"{above}"
        raise ValueError(
            f"{what}={batch_size} is not divisible by the {n} devices of the mesh: each device "
            f"takes {what}/{n} rows; use {nearest}, or a mesh of a divisor of {batch_size} devices")


def _batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P(DATA_AXIS))


def local_rows(global_batch_size: int, mesh: Mesh) -> slice:
    """The rows of every global batch of ``global_batch_size`` that this process loads.

    Process i of P holds the i-th contiguous block, B/P rows; with one process, every row
    (``slice(0, B)``). A process with no device in the mesh loads none (``slice(0, 0)``).

    Returns: a ``slice`` of the leading (batch) axis.
    """
    check_batch_size(mesh, global_batch_size, "global_batch_size")
    indices = _batch_sharding(mesh).addressable_devices_indices_map((global_batch_size,))
    blocks = sorted({(i[0].start or 0, global_batch_size if i[0].stop is None else i[0].stop)
                     for i in indices.values()})
    if not blocks:
        return slice(0, 0)
    for (_, stop), (start, _) in zip(blocks, blocks[1:]):
        if stop != start:
            raise ValueError(f"local_rows: this process's devices hold rows {blocks}, which are not "
                             f"contiguous; build the mesh with data_mesh (devices in process order)")
    return slice(blocks[0][0], blocks[-1][1])


def shard_batch(mesh: Mesh, batch: Any) -> Any:
    """Turn this process's rows of a batch into global arrays sharded over the ``"data"`` axis.

    ``batch`` is a pytree (a tuple ``(x, y)``, a dict) of arrays that share their leading
    axis: the rows ``local_rows(B, mesh)`` of the global batch. Each becomes one ``jax.Array`` of
    the global shape whose device d holds rows [d·B/N, (d+1)·B/N)
    (``jax.make_array_from_process_local_data``; nothing crosses hosts). With one process the
    local rows are the whole batch.

    Shapes: each leaf (B/P, ...) on each of P processes → (B, ...), B = B/P · P.
    """
    sharding = _batch_sharding(mesh)
    local_devices = len(sharding.addressable_devices)
    leaves = jax.tree.leaves(batch)
    if not leaves:
        raise ValueError("shard_batch: the batch has no arrays")
    rows = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in leaves}
    if None in rows or len(rows) != 1:
        raise ValueError(f"shard_batch: every array of the batch needs the same leading (batch) "
                         f"axis; got shapes {[np.shape(leaf) for leaf in leaves]}")
    (n_local,) = rows
    if local_devices == 0 or n_local % local_devices:
        raise ValueError(f"shard_batch: this process has {n_local} rows for {local_devices} of the "
                         f"mesh's devices; pass x[local_rows(batch_size, mesh)] with a batch size "
                         f"that check_batch_size accepts")
    n_global = n_local // local_devices * mesh.devices.size

    def put(leaf):
        leaf = np.asarray(leaf) if not isinstance(leaf, jax.Array) else leaf
        return jax.make_array_from_process_local_data(sharding, leaf, (n_global, *leaf.shape[1:]))

    return jax.tree.map(put, batch)


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, timeout_s: int = 300) -> None:
    """Join a multi-process JAX job (``jax.distributed.initialize``); call it first, before
    anything else touches JAX, in every process, with the same ``coordinator`` and
    ``num_processes`` and each its own ``process_id`` in [0, num_processes).

    Args:
      coordinator: "HOST:PORT" of process 0, which serves there; the others connect to it.
      num_processes: how many processes the job has (one per GPU host, usually).
      process_id: this process's index; process 0 is the primary (``is_primary``).
      timeout_s: how long to wait for every process to join before failing.

    With no arguments JAX finds them itself (TPU pods, SLURM, Open MPI). On CPU the processes
    talk through gloo (``jax_cpu_collectives_implementation``; the default since jax 0.5, set
    here if unset); on GPU through NCCL.
    """
    given = [coordinator is not None, num_processes is not None, process_id is not None]
    if any(given) and not all(given):
        raise ValueError("initialize: pass coordinator, num_processes and process_id together "
                         "(or none of them, to let JAX detect a TPU pod or SLURM job): "
                         "initialize('10.0.0.1:1234', num_processes=2, process_id=0)")
    if all(given):
        _check_process_args(coordinator, num_processes, process_id)
    if not jax.config.jax_cpu_collectives_implementation:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, num_processes, process_id,
                               initialization_timeout=timeout_s)


def _check_process_args(coordinator: str, num_processes: int, process_id: int) -> None:
    host, _, port = str(coordinator).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"initialize: coordinator must be 'HOST:PORT' with a port in 1..65535, "
                         f"got {coordinator!r}")
    if isinstance(num_processes, bool) or not isinstance(num_processes, int) or num_processes < 1:
        raise ValueError(f"initialize: num_processes must be a positive int, got {num_processes!r}")
    if (isinstance(process_id, bool) or not isinstance(process_id, int)
            or not 0 <= process_id < num_processes):
        raise ValueError(f"initialize: process_id must be an int in [0, {num_processes}) for "
                         f"num_processes={num_processes}, got {process_id!r}")


def is_primary() -> bool:
    """True in process 0, the one that logs, writes checkpoints and result files."""
    return jax.process_index() == 0
