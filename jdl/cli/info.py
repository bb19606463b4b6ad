"""``jdl info``: versions, devices and what ``jdl train`` offers."""

from __future__ import annotations

from jdl.cli.flags import MODELS, OPTIMIZERS, SCHEDULES


def info_command() -> None:
    """Print jdl's and jax's versions, the backend and its devices, and the choices of
    ``--model``, ``--dataset``, ``--optimizer`` and ``--schedule``."""
    import jax

    import jdl
    from jdl import data

    print(f"jdl {jdl.__version__}, jax {jax.__version__}, backend {jax.default_backend()}, "
          f"devices {jax.devices()}")
    print(f"models: {', '.join(MODELS)}\ndata sets: {', '.join(data.names())}\n"
          f"optimizers: {', '.join(OPTIMIZERS)}\nschedules: {', '.join(SCHEDULES)}")
