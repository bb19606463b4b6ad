"""Process-wide settings of the CPU runtime that change speed, never values.

``multi_output_fusion`` turns on XLA:CPU's sibling multi-output fusion, which lets an optimizer
update read g, m, v, θ once and write m, v, θ once per leaf (``jdl.optim.onepass``). It is a
compiler flag that XLA reads from ``XLA_FLAGS`` once, when JAX starts its CPU backend, so it
must be called before the first computation, and it applies to every program the process
compiles.

XLA:CPU allocates each compiled step's temporaries (the activations a backward pass keeps: for
the 4-layer GPT benchmark, 252 MB) as one block per call. glibc's ``malloc`` serves a block that
large with a fresh ``mmap`` and returns it with ``munmap`` — and a block asked for from one of
XLA's worker threads always goes to ``mmap``, whatever ``M_MMAP_MAX`` says — so every step
touches every 4 KiB page of it anew: ~62,000 page faults a step, a sixth of the GPT step on two
cores (benchmarks/NOTES.md, "GPT"). PyTorch never meets this: its activations are many small
blocks that come back from the heap.

``keep_host_memory`` is the explicit, opt-in fix: dispatch synchronously (each call runs on the
calling Python thread, whose allocations come from the main heap) and tell glibc never to
``mmap`` and never to trim the heap, so the block of the first step is reused by every later
one. Blocks that XLA's worker threads allocate for themselves (Eigen's packing buffers for large
matmuls) can still fault. It is process-wide (it changes ``malloc`` for every library in the process and keeps the
peak heap mapped until exit) and so is never done on import: ``jdl train`` and the benchmark
harness call it; a user of ``fit`` may.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import os

import jax

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_MAX = -4
_NEVER_TRIM = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class HostMemory:
    """What ``keep_host_memory`` did: ``synchronous`` dispatch set, ``malloc_tuned`` (glibc
    accepted both mallopt calls), and ``reason`` when the allocator part was skipped."""

    synchronous: bool
    malloc_tuned: bool
    reason: str = ""


def _glibc():
    """glibc's C library, or None where the process does not run on glibc (macOS, musl)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name)
    try:
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
    except AttributeError:
        return None
    return libc


def keep_host_memory(synchronous: bool = True) -> HostMemory:
    """Keep XLA:CPU's per-step temporaries mapped from one step to the next.

    Sets ``jax_cpu_enable_async_dispatch`` to ``not synchronous`` and calls
    ``mallopt(M_MMAP_MAX, 0)`` and ``mallopt(M_TRIM_THRESHOLD, 2³¹ − 1)``: blocks of any size come
    from the heap, and freed memory stays in it. Values are unchanged (only where memory comes
    from changes); with ``synchronous=False`` blocks allocated on XLA's threads still ``mmap``.
    Call it once, before JAX starts its backend (the first array made or function run): the
    dispatch mode is fixed when the CPU client is created, so a later call changes only the
    allocator (and says so in ``reason``). The setting lasts until the process exits.
    Returns a ``HostMemory`` saying what was applied.
    """
    reasons = []
    if synchronous and _backend_started():
        synchronous = False
        reasons.append("JAX's backend had started: dispatch stays asynchronous")
    if synchronous:
        jax.config.update("jax_cpu_enable_async_dispatch", False)
    libc = _glibc()
    tuned = libc is not None and bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD,
                                                                                         _NEVER_TRIM))
    if not tuned:
        reasons.append("not glibc: the allocator is left as it is" if libc is None else "glibc refused mallopt")
    return HostMemory(synchronous, tuned, "; ".join(reasons))


def _backend_started() -> bool:
    from jax._src import xla_bridge  # no public way to ask; absent → assume not started

    return bool(getattr(xla_bridge, "backends_are_initialized", lambda: False)())


MULTI_OUTPUT_FUSION = "xla_cpu_use_multi_output_fusion"


def with_multi_output_fusion(xla_flags: str) -> str:
    """``xla_flags`` (an ``XLA_FLAGS`` value) with ``xla_cpu_use_multi_output_fusion`` added to
    its ``--xla_backend_extra_options`` list (kept when already there; when absent, the option
    goes first: XLA stops reading flags at the first word without ``--``, such as the
    ``intra_op_parallelism_threads=1`` that some scripts append)."""
    words = xla_flags.split()
    for i, word in enumerate(words):
        if word.startswith("--xla_backend_extra_options="):
            options = word.split("=", 1)[1]
            if MULTI_OUTPUT_FUSION not in options.split(","):
                words[i] = word + ("," if options else "") + MULTI_OUTPUT_FUSION
            return " ".join(words)
    return " ".join([f"--xla_backend_extra_options={MULTI_OUTPUT_FUSION}"] + words)


def multi_output_fusion() -> bool:
    """Turn on XLA:CPU's multi-output fusion for this process and say whether it took effect.

    Adds the option to ``os.environ['XLA_FLAGS']``, which XLA reads when JAX's backend starts:
    call it before the first computation (``jdl.optim`` updates traced afterwards take their
    one-pass form, one loop per leaf). Returns ``jdl.optim.onepass.fuses_one_pass`` for the
    default backend, which starts the backend: False when it had started before the call (the
    flag then waits for the next process) or when the backend does not fuse that form.
    """
    from jdl.optim.onepass import fuses_one_pass  # jdl.optim is not needed to import this module

    os.environ["XLA_FLAGS"] = with_multi_output_fusion(os.environ.get("XLA_FLAGS", ""))
    return fuses_one_pass(jax.default_backend())
