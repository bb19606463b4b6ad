"""The machine: what it is (CPU, device, library versions) and what it can do at best
(the ceilings every workload's GFLOP/s and bytes are compared with).

- matmul ceiling: GFLOP/s of a jitted float32 n×n @ n×n in XLA, 2n³ FLOPs a call;
- copy ceiling: GB/s of x ← x + 1 on a donated float32 buffer (read and write counted, 2·N·4
  bytes a call), the in-place traffic a donated training step gets.
"""

from __future__ import annotations

import os
import platform
import time
from importlib import metadata


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def info() -> dict:
    """Machine, device and library versions, and the environment variables that change speed."""
    import jax

    versions = {}
    for pkg in ("jax", "jaxlib", "flax", "optax", "torch", "numpy", "jdl"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    try:
        import torch

        torch_threads = torch.get_num_threads()
    except ImportError:
        torch_threads = None
    return {
        "cpu": _cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
        "python": platform.python_version(), "versions": versions,
        "devices": [str(d) for d in jax.devices()], "backend": jax.default_backend(),
        "torch_threads": torch_threads,
        "env": {k: os.environ.get(k) for k in ("XLA_FLAGS", "OPENBLAS_CORETYPE", "OMP_NUM_THREADS",
                                               "JAX_PLATFORMS") if os.environ.get(k)},
        "load_average": os.getloadavg(),
    }


def _best_seconds(fn, n: int) -> float:
    """The fastest of n timed calls: a ceiling is the best the machine did, not its typical."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def ceilings(quick: bool = False) -> dict:
    """Measure the matmul (GFLOP/s) and in-place copy (GB/s) ceilings of the default device,
    each the best of several calls."""
    import jax
    import jax.numpy as jnp

    n = 512 if quick else 2048
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    matmul = jax.jit(lambda a, b: a @ b)
    matmul(a, a).block_until_ready()
    t_mm = _best_seconds(lambda: matmul(a, a).block_until_ready(), 3 if quick else 7)

    words = (4 if quick else 64) * 2 ** 20  # float32 elements: 16 MiB quick, 256 MiB full
    add_one = jax.jit(lambda x: x + 1, donate_argnums=0)
    held = [add_one(jnp.zeros((words,), jnp.float32))]

    def copy():
        held[0] = add_one(held[0])
        held[0].block_until_ready()

    copy()
    t_copy = _best_seconds(copy, 3 if quick else 7)
    return {"matmul_n": n, "matmul_gflops": 2 * n ** 3 / t_mm / 1e9,
            "copy_mib": words * 4 / 2 ** 20, "copy_gbs": 2 * words * 4 / t_copy / 1e9}
