"""Non-finite guards for the training step: whether the loss and each new param leaf went NaN or
±∞, found inside the jitted step almost for free, and reported by the loop with the step and the
first param path that went bad.

A non-finite gradient always shows in the new params (θ' = θ + u with u built from g: ±∞·η is
±∞, NaN stays NaN, Adam's ∞/√∞ is NaN), so the params and the loss are all that is checked; a
loss that overflows while its gradient stays finite is caught by the loss flag."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jdl.core import path_str

MODES = ("stop", "skip")


class NonFiniteError(FloatingPointError):
    """Training produced a NaN or ±∞; ``step`` is the update that did, ``path`` the first leaf."""

    def __init__(self, message: str, step: int, path: str):
        super().__init__(message)
        self.step, self.path = step, path


def check_mode(mode: str | None) -> None:
    """Refuse an unknown ``on_nonfinite`` value, listing the valid ones."""
    if mode is not None and mode not in MODES:
        raise ValueError(f"on_nonfinite={mode!r}: valid choices are None, {', '.join(map(repr, MODES))}")


def finite_flags(loss: jax.Array, params: Any) -> jax.Array:
    """ok (1 + L,) bool: [isfinite(loss), isfinite(Σ θ'_l) for each of the L new param leaves].

    A sum is NaN or ±∞ exactly when an element is (or when finite elements overflow it, which
    needs |θ| near 1e38/size); unlike ``all(isfinite(θ'))`` it fuses into the update, so the
    check costs a few percent of a memory-bound step instead of a pass over the params.
    """
    return jnp.stack([jnp.isfinite(loss), *(jnp.isfinite(jnp.sum(p)) for p in jax.tree.leaves(params))])


def flag_names(params: Any) -> list[str]:
    """The names of :func:`finite_flags`' entries: 'loss', then each param's path."""
    return ["loss", *(path_str(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0])]


def select(ok: jax.Array, new: Any, old: Any) -> Any:
    """new where ``ok`` else old, leaf by leaf (a skipped step keeps the old values)."""
    return jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, old)


def raise_first(pending: list[tuple[int, jax.Array]], names: list[str], last_good: str | None) -> None:
    """Check the flags of the steps run since the last check (``pending``: (step, ok) pairs, ok
    still on the device) and raise ``NonFiniteError`` for the first bad step, naming the first
    bad entry; one transfer for all of them, so the loop never waits for the device per step.
    ``pending`` is emptied when all of them were finite."""
    if not pending:
        return
    flags = jax.device_get([ok for _, ok in pending])
    for (step, _), ok in zip(pending, flags):
        ok = np.asarray(ok)
        if not ok.all():
            bad = [n for n, good in zip(names, ok) if not good]
            params = [n for n in bad if n != "loss"]
            path = params[0] if params else bad[0]
            first = (f"first param that went non-finite: {path}" if params
                     else "the loss only; the params are still finite")
            where = f"the last good checkpoint is {last_good}" if last_good else "no checkpoint was written"
            raise NonFiniteError(
                f"fit: step {step} made a non-finite value: {', '.join(bad[:4])}"
                f"{' ...' if len(bad) > 4 else ''} ({first}). "
                f"Training stopped; {where}. Pass on_nonfinite='skip' to skip such steps, or use "
                "jdl.debug.find_nan to find the operation that made it.", step, path)
    pending.clear()


class Guard:
    """The non-finite flags of the steps not checked yet: ``add`` one step's flags (still on
    the device) and check them all every ``every`` steps; ``check`` now (before a checkpoint,
    at an epoch's end). One transfer per check, so the loop never waits on the device per step."""

    def __init__(self, names: list[str]):
        self.names = names
        self.pending: list[tuple[int, jax.Array]] = []

    def add(self, step: int, ok: jax.Array, every: int, last_good: str | None) -> None:
        """Keep step ``step``'s flags; check the pending ones once there are ``every``."""
        self.pending.append((step, ok))
        if len(self.pending) >= every:
            self.check(last_good)

    def check(self, last_good: str | None) -> None:
        """Raise ``NonFiniteError`` for the first bad pending step (see :func:`raise_first`)."""
        raise_first(self.pending, self.names, last_good)
