"""Transfer learning's first step: load pre-trained params into a model whose head (or any other
part) differs. Every leaf of the new model's params whose path and shape a source leaf shares is
copied; the others keep their fresh init and are reported, so nothing is silently left random.

    θ_new[p] = θ_src[p]   if p is a path of both and shape(θ_src[p]) = shape(θ_new[p])
    θ_new[p] = θ_init[p]  otherwise (reported as fresh: missing from the source, or its shape differs)
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jdl.core import Module, path_str
from jdl.paths import Patterns, as_patterns, matches
from jdl.train.checkpoint import restore


class TransferReport(NamedTuple):
    """What ``restore_matching`` did, as path strings ('head/w').

    copied: target leaves taken from the source. fresh: target leaves left at their init
    (missing from the source, or excluded). mismatched: target leaves the source has with another
    shape (also left fresh), as 'path: source (a, b) vs target (c, d)'. unused: source leaves
    no target leaf took.
    """

    copied: list
    fresh: list
    mismatched: list
    unused: list


def _leaves(tree: Any) -> dict:
    return {path_str(p): x for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def restore_matching(target: Any, source: Any, *, exclude: Patterns = (),
                     prefix: str = "") -> tuple[Any, TransferReport]:
    """Copy the source's leaves into ``target`` where path and shape agree.

    >>> new, report = restore_matching({'body': {'w': jnp.zeros(2)}, 'head': {'w': jnp.zeros(3)}},
    ...                                {'body': {'w': jnp.ones(2)}, 'head': {'w': jnp.ones(5)}})
    >>> report.copied, report.fresh
    (['body/w'], ['head/w'])

    Shapes: each copied leaf keeps its shape; its dtype becomes the target leaf's.
    Args:
      target: the new model's freshly initialized params (its tree structure is kept).
      source: the pre-trained params (e.g. ``jdl.train.restore(path).train_state.params``).
      exclude: ``jdl.paths`` patterns of target paths to leave fresh even when they match
        (a head of the same shape trained for another task).
      prefix: a path under which the source's params sit in the target ('base' for LoRA params,
        'backbone' for a model that wraps the pre-trained one); the target's other leaves stay fresh.
    Returns: (params, ``TransferReport``).
    """
    excluded = as_patterns(exclude, "restore_matching")
    src = _leaves(source)
    if prefix:
        src = {f"{prefix.strip('/')}/{p}": x for p, x in src.items()}
    copied, fresh, mismatched, used = [], [], [], set()

    def take(path, x):
        p = path_str(path)
        s = src.get(p)
        if s is None or (excluded and matches(p, excluded)):
            fresh.append(p)
            return x
        if jnp.shape(s) != jnp.shape(x):
            mismatched.append(f"{p}: source {tuple(jnp.shape(s))} vs target {tuple(jnp.shape(x))}")
            fresh.append(p)
            used.add(p)
            return x
        copied.append(p)
        used.add(p)
        return jnp.asarray(s, dtype=jnp.result_type(x))

    out = jax.tree_util.tree_map_with_path(take, target)
    unused = [p for p in src if p not in used]
    return out, TransferReport(copied, fresh, mismatched, unused)


def load_matching(path: str | os.PathLike, target: Any, *, step: int | None = None,
                  exclude: Patterns = (), prefix: str = "") -> tuple[Any, TransferReport]:
    """``restore_matching(target, params of the checkpoint at path)``: a checkpoint of one model
    loaded into another (``jdl.train.restore`` reads it, checking its CRCs).

    Args: path, a workdir or checkpoint folder; target, the new model's params; step, which
    checkpoint (None: the newest); exclude, prefix: as ``restore_matching``.
    Returns: (params, ``TransferReport``).
    """
    source = restore(path, step=step).train_state.params
    return restore_matching(target, source, exclude=exclude, prefix=prefix)


def starting_from(model: Module, params: Any, state: Any = None) -> Module:
    """``model`` whose ``init`` returns the given params (and state) instead of drawing fresh
    ones, so ``fit`` fine-tunes from pre-trained weights (e.g. ``restore_matching``'s output):

        fit(starting_from(model, new_params, state), loss, optimizer, data, ...)

    ``apply`` is the model's own; ``init`` returns copies (``fit`` donates the buffers it
    trains, the caller's arrays stay valid for the next run). ``init`` checks that the params fit the example input: it
    compares their shapes with the model's own ``init`` (traced by ``jax.eval_shape``, no
    FLOPs) and raises ``ValueError`` naming the first path that differs.
    """

    def init(key, x):
        want_params, want_state = jax.eval_shape(model.init, key, x)
        given_state = want_state if state is None else state
        for name, want, got in (("params", want_params, params), ("state", want_state, given_state)):
            w, g = _leaves(want), _leaves(got)
            bad = [p for p in w if p not in g or jnp.shape(g[p]) != w[p].shape] + [p for p in g if p not in w]
            if bad:
                raise ValueError(f"starting_from: the given {name} do not fit {model.name}'s init at "
                                 f"{bad[0]!r} (and {len(bad) - 1} more)")
        copy = lambda tree: jax.tree.map(jnp.array, tree)  # fit donates its buffers; the caller keeps these
        return copy(params), (model.init(key, x)[1] if state is None else copy(state))

    return model._replace(init=init)
