"""JAX's persistent compilation cache for ``jdl train`` and ``jdl experiment``
(``--compilation_cache``)."""

from __future__ import annotations

import os
import sys

# Cache every compiled program, however small or quick to compile: a training run compiles
# dozens of small ones (one per initializer shape), and together they are most of its start-up.
CACHE_CONFIG = {"jax_persistent_cache_min_compile_time_secs": 0, "jax_persistent_cache_min_entry_size_bytes": -1}


def compilation_cache_dir(flag_value: str | None) -> str | None:
    """The cache folder that ``--compilation_cache=flag_value`` names (see its help), or None
    when it is 'none'."""
    from jdl.data.files import cache_root

    value = (flag_value or os.environ.get("JDL_CACHE") or os.environ.get("JAX_COMPILATION_CACHE_DIR")
             or os.path.join(cache_root(), "xla"))
    return None if value == "none" else os.path.abspath(os.path.expanduser(value))


def use_compilation_cache(path: str | None) -> dict:
    """Point JAX's persistent compilation cache at ``path`` for this process (before its first
    compilation: JAX decides then) and return the same settings as environment variables for
    child processes; nothing when ``path`` is None or cannot be created (then with a warning)."""
    if path is None:
        return {}
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        print(f"jdl: cannot use {path} as the compilation cache ({e}); compiling without it "
              "(--compilation_cache=none silences this)", file=sys.stderr)
        return {}
    import jax

    jax.config.update("jax_compilation_cache_dir", path)
    for name, value in CACHE_CONFIG.items():
        jax.config.update(name, value)
    return {"JAX_COMPILATION_CACHE_DIR": path, **{k.upper(): str(v) for k, v in CACHE_CONFIG.items()}}
