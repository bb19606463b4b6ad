"""Native CPU kernels: C++ sources in this folder, compiled on first use with the system's C++
compiler against JAX's XLA FFI headers and registered as XLA custom calls.

``lstm.cc`` (``jdl.kernels.lstm``'s recurrence, ``impl='native'``), ``attention.cc`` (causal
attention forward and backward, ``jdl.nn.attend(impl='native')``) and ``optim.cc`` (multi-tensor
Adam and SGD-momentum updates, ``jdl.optim.fused_adam``/``fused_sgd``), with ``simd.h`` shared and
``gemm.h`` for the attention's products. Nothing is
downloaded: the shared library is built once per source, compiler and JAX version into
``$JDL_NATIVE_CACHE`` (default ``~/.cache/jdl/native``), by ``g++`` (or ``$CXX``), for x86-64
CPUs with AVX2 and FMA. ``available()`` says whether this machine can have it, and ``load()``
raises ``NativeUnavailable`` naming the reason where it cannot — callers ask for the native
kernel explicitly and get that error, never a silent fallback.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import jax

HERE = pathlib.Path(__file__).parent
SOURCES = (HERE / "lstm.cc", HERE / "attention.cc", HERE / "optim.cc")
HEADERS = (HERE / "simd.h", HERE / "gemm.h")
FLAGS = ("-O3", "-std=c++17", "-mavx2", "-mfma", "-shared", "-fPIC", "-pthread")
TARGETS = {"jdl_lstm_forward": "JdlLstmForward", "jdl_lstm_backward": "JdlLstmBackward",
           "jdl_attention_forward": "JdlAttentionForward", "jdl_attention_backward": "JdlAttentionBackward",
           "jdl_adam_update": "JdlAdamUpdate", "jdl_momentum_update": "JdlMomentumUpdate"}


class NativeUnavailable(RuntimeError):
    """The native kernels cannot run here (no compiler, no AVX2/FMA, or the build failed)."""


def _cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where that file does not exist)."""
    try:
        text = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cache_dir() -> pathlib.Path:
    """Where built libraries live: ``$JDL_NATIVE_CACHE`` or ``~/.cache/jdl/native``."""
    return pathlib.Path(os.environ.get("JDL_NATIVE_CACHE", pathlib.Path.home() / ".cache/jdl/native"))


def _build(compiler: str) -> pathlib.Path:
    """Compile the sources once per (sources, flags, compiler, JAX) into the cache; return the
    library's path. It is written under a temporary name and renamed, so concurrent builds are safe."""
    text = b"".join(p.read_bytes() for p in SOURCES + HEADERS)
    key = hashlib.sha256(text + " ".join(FLAGS).encode() + compiler.encode() + jax.__version__.encode()).hexdigest()[:16]
    out = cache_dir() / f"jdl_native_{key}.so"
    if out.exists():
        return out
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
    except OSError as e:
        raise NativeUnavailable(f"cannot write the native library to {out.parent} ({e}); "
                                f"set $JDL_NATIVE_CACHE to a writable folder") from e
    os.close(fd)
    cmd = [compiler, *FLAGS, f"-I{jax.ffi.include_dir()}", *map(str, SOURCES), "-o", tmp]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        os.unlink(tmp)
        raise NativeUnavailable(f"building {', '.join(p.name for p in SOURCES)} failed ({' '.join(cmd)}):\n"
                                f"{done.stderr[-2000:]}")
    os.replace(tmp, out)
    return out


def load() -> pathlib.Path:
    """Build (once) and register the native kernels with XLA's CPU platform; return the library's
    path. Raises ``NativeUnavailable`` with the reason where this machine cannot run them (the
    outcome is kept for the process: a failed build is not retried on every call)."""
    outcome = _load_once()
    if isinstance(outcome, NativeUnavailable):
        raise outcome
    return outcome


@functools.lru_cache(maxsize=None)
def _load_once() -> "pathlib.Path | NativeUnavailable":
    try:
        return _load()
    except NativeUnavailable as e:
        return e


def _load() -> pathlib.Path:
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        raise NativeUnavailable(f"native kernels need Linux on x86-64, not {sys.platform}/{os.uname().machine}")
    missing = {"avx2", "fma"} - _cpu_flags()
    if missing:
        raise NativeUnavailable(f"native kernels need a CPU with {sorted(missing)}")
    compiler = os.environ.get("CXX") or shutil.which("g++")
    if not compiler:
        raise NativeUnavailable("native kernels need a C++ compiler: install g++ or set $CXX")
    path = _build(compiler)
    lib = ctypes.cdll.LoadLibrary(str(path))
    for name, symbol in TARGETS.items():
        jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(getattr(lib, symbol)), platform="cpu")
    return path


def available() -> bool:
    """Whether ``load()`` succeeds on this machine (it builds the library if needed)."""
    try:
        load()
    except NativeUnavailable:
        return False
    return True
