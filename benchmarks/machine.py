"""The machine: what it is (CPU, device, library versions) and what it can do at best
(the ceilings every workload's GFLOP/s and bytes are compared with).

- matmul ceiling: GFLOP/s of a jitted n×n @ n×n in XLA, 2n³ FLOPs a call, in float32 and in
  bfloat16 (n = 2048 on a CPU, 8192 on a GPU);
- copy ceiling: GB/s of x ← x + 1 on a donated float32 buffer (read and write counted, 2·N·4
  bytes a call), the in-place traffic a donated training step gets;
- on a GPU, also the maker's nominal dense peak for its kind (``NOMINAL_PEAK_TFLOPS``), the
  denominator of the usual MFU.
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


# Nominal dense (no sparsity) peaks in TFLOP/s from the makers' data sheets, by a substring of
# ``jax.devices()[0].device_kind``. 'float32' is the TF32 tensor-core rate where the GPU has one:
# XLA runs float32 matmuls in TF32 there unless the precision is set to 'highest'.
NOMINAL_PEAK_TFLOPS = {
    "H200": {"float32": 494.7, "bfloat16": 989.4},
    "H100": {"float32": 494.7, "bfloat16": 989.4},
    "A100": {"float32": 156.0, "bfloat16": 312.0},
    "L40S": {"float32": 183.0, "bfloat16": 362.1},
    "L4": {"float32": 60.0, "bfloat16": 121.0},
    "A10": {"float32": 62.5, "bfloat16": 125.0},
    "V100": {"float32": 15.7},
    "T4": {"float32": 8.1},
}


def nominal_peak(device_kind: str) -> dict | None:
    """{'float32': TFLOP/s, 'bfloat16': TFLOP/s} of a GPU kind, or None where unknown (CPUs)."""
    for name, peak in NOMINAL_PEAK_TFLOPS.items():
        if name.lower() in device_kind.lower():
            return peak
    return None


def _best_seconds(fn, n: int) -> float:
    """The fastest of n timed calls: a ceiling is the best the machine did, not its typical."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def ceilings(quick: bool = False) -> dict:
    """Measure the matmul (GFLOP/s, float32 and bfloat16) and in-place copy (GB/s) ceilings of
    the default device, each the best of several calls."""
    import jax
    import jax.numpy as jnp

    gpu = jax.default_backend() != "cpu"
    n = 512 if quick else (8192 if gpu else 2048)
    matmul = jax.jit(lambda a, b: a @ b)
    by_dtype = {}
    for dtype in ("float32", "bfloat16"):
        a = jax.random.normal(jax.random.key(0), (n, n), jnp.dtype(dtype))
        matmul(a, a).block_until_ready()
        t_mm = _best_seconds(lambda: matmul(a, a).block_until_ready(), 3 if quick else 7)
        by_dtype[dtype] = 2 * n ** 3 / t_mm / 1e9

    words = (4 if quick else 64) * 2 ** 20  # float32 elements: 16 MiB quick, 256 MiB full
    add_one = jax.jit(lambda x: x + 1, donate_argnums=0)
    held = [add_one(jnp.zeros((words,), jnp.float32))]

    def copy():
        held[0] = add_one(held[0])
        held[0].block_until_ready()

    copy()
    t_copy = _best_seconds(copy, 3 if quick else 7)
    kind = jax.devices()[0].device_kind
    return {"matmul_n": n, "matmul_gflops": by_dtype["float32"], "matmul_gflops_by_dtype": by_dtype,
            "copy_mib": words * 4 / 2 ** 20, "copy_gbs": 2 * words * 4 / t_copy / 1e9,
            "device_kind": kind, "nominal_peak_tflops": nominal_peak(kind)}
