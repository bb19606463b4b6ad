"""One pass over memory per leaf: the form of an update that XLA can compile to a single loop.

An update with state, e.g. momentum,

    t' = g + μ·t            (an output: the new state)
    θ' = θ − η·t'           (an output: the new params, reading t')

is two loops on XLA:CPU: one writes t', the next reads θ and t' back from memory. On 10M float32
params Adam's three loops move 40 B/param where one loop that reads g, m, v, θ once and writes
m', v', θ' once moves 28 (SGD-momentum: 24 against 20). XLA:CPU's multi-output fusion merges
loops that read the same inputs (siblings) but not a loop into the loop that reads its output.
The one-pass form hands it siblings: θ' is computed from the state recomputed from the inputs,

    t' = g + μ·t            θ' = θ − η·(g₁ + μ·t₁),   (g₁, t₁) = (g·1, t·1)

where 1 comes out of an ``optimization_barrier``, so that common-subexpression elimination
cannot see that g₁ + μ·t₁ is t'. The values are the same (x·1 = x exactly); the loops read
only inputs, so XLA fuses them into one 4-in/3-out loop per leaf.

Only where that fusion happens is the form worth it: without multi-output fusion (XLA:CPU's
default; ``jdl.runtime.multi_output_fusion`` turns it on) the recomputation reads the old state
after it has been overwritten in place, and XLA copies it first (60 B/param for Adam). So
``one_pass`` decides by compiling the two forms of a small momentum update once per backend
and counting loops: the one-pass form is used only where it gives fewer loops than the plain
form, and only under a trace (an eager call has no loops to merge).
"""

from __future__ import annotations

import functools
import re
from typing import Any

import jax
import jax.numpy as jnp

_PROBE_SIZE = 4096


def opaque(tree: Any) -> Any:
    """x·1 for every leaf, the 1 behind an ``optimization_barrier``: the same values, which XLA
    cannot prove equal to the inputs (so a recomputation from them is not merged with the
    original by common-subexpression elimination)."""
    one = jax.lax.optimization_barrier(jnp.ones([], jnp.float32))
    return jax.tree.map(lambda x: x * one.astype(x.dtype), tree)


def _loops(fn) -> int:
    """The number of loops over arrays (fusions and copies with array-shaped results) in fn's
    optimized HLO, on the default backend."""
    x = jax.ShapeDtypeStruct((_PROBE_SIZE,), jnp.float32)
    text = jax.jit(fn, donate_argnums=(0, 1)).lower(x, x, x).compile().as_text()
    array = rf"f32\[{_PROBE_SIZE}\]"
    return len(re.findall(rf"= (?:\([^)]*{array}[^)]*\)|{array}\S*) (?:fusion|copy)\(", text))


def _plain(theta, t, g):
    t = g + 0.9 * t
    return theta - 0.01 * t, t


def _one_pass(theta, t, g):
    g1, t1 = opaque((g, t))
    return theta - 0.01 * (g1 + 0.9 * t1), g + 0.9 * t


@functools.cache
def fuses_one_pass(backend: str) -> bool:
    """Whether ``backend`` (the default backend, named for the cache) compiles the one-pass form
    of a momentum update (θ' from the state recomputed from opaque inputs) to fewer loops than
    the plain form (θ' from t'): one against two on XLA:CPU with multi-output fusion."""
    del backend
    return _loops(_one_pass) < _loops(_plain)


def one_pass(grads: Any) -> bool:
    """True when an update of ``grads`` should take the one-pass form: the leaves are traced
    (the update is being compiled) and the default backend fuses that form into fewer loops."""
    leaves = jax.tree.leaves(grads)
    return bool(leaves) and isinstance(leaves[0], jax.core.Tracer) and fuses_one_pass(jax.default_backend())
