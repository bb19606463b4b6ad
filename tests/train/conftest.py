"""The tests of jdl.train call ``fit`` many times on the same small models, and every call jits
its step afresh: a persistent compilation cache (a fresh folder for this test process, removed
at exit, passed on to subprocesses through JAX_COMPILATION_CACHE_DIR) compiles each program once.
Set at collection, before any test compiles, because JAX decides on its first compilation
whether to use the cache."""

import atexit
import os
import shutil
import tempfile

import jax

CACHE_DIR = os.environ.get("JAX_COMPILATION_CACHE_DIR") or tempfile.mkdtemp(prefix="jdl-test-jax-cache-")
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    atexit.register(shutil.rmtree, CACHE_DIR, ignore_errors=True)
jax.config.update("jax_compilation_cache_dir", CACHE_DIR)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
