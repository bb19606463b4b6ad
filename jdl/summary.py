"""Inspecting a model: parameter counts and a Keras-style summary table."""

from __future__ import annotations

from typing import Any

import jax

from jdl.core import Module, output_struct, param_count, shape_struct
from jdl.nn.combinators import child_names


def _rows(module: Module, params: Any, state: Any, x: Any, path: str, rows: list) -> Any:
    """Append (path, output shape, params, state size) for each layer; return the output.

    A serial stack is flattened into its layers; a residual or parallel block gets a row of its
    own (its output and all its params) followed by its branches' rows, nested under its path."""
    if module.name == "serial" and module.children:
        for name, child in zip(child_names(module.children), module.children):
            x = _rows(child, params[name], state[name], x, f"{path}{name}/", rows)
        return x
    y = output_struct(module, params, state, x)
    shape = jax.tree.map(lambda s: tuple(s.shape), y)
    rows.append((path.rstrip("/") or module.name, shape, param_count(params), param_count(state)))
    if module.name in ("residual", "parallel") and module.children:
        # residual: body and shortcut both see x; parallel: a tuple x gives branch i its x[i]
        split = module.name == "parallel" and isinstance(x, (tuple, list))
        for i, (name, child) in enumerate(zip(child_names(module.children), module.children)):
            if name in params:  # residual has no shortcut entry without a shortcut
                _rows(child, params[name], state.get(name, {}), x[i] if split else x, f"{path}{name}/", rows)
    return y


def summary(module: Module, x: Any, key: jax.Array | None = None) -> str:
    """A table of every layer's path, output shape and parameter count, with the totals, like
    Keras's ``model.summary()``. Nothing is computed: shapes come from ``jax.eval_shape``.

    Serial stacks are expanded layer by layer; a residual or parallel block is a row with its
    total, followed by its branches' rows (so nested rows are part of the row above them, not
    extra params); ``repeat`` is one row. ``x`` is an example input (array or
    ``jax.ShapeDtypeStruct``), batch first.

    >>> import jax.numpy as jnp, jdl
    >>> print(jdl.summary(jdl.models.mlp([3, 2]), jnp.zeros((1, 4))))  # doctest: +NORMALIZE_WHITESPACE
    layer      output shape  params
    ---------  ------------  ------
    0_flatten  (1, 4)        0
    1_dense    (1, 3)        15
    2_relu     (1, 3)        0
    3_dense    (1, 2)        8
    ---------  ------------  ------
    total                    23
    """
    x = jax.tree.map(shape_struct, x)
    key = jax.random.key(0) if key is None else key
    params, state = jax.eval_shape(module.init, key, x)
    rows: list = []
    _rows(module, params, state, x, "", rows)
    has_state = any(r[3] for r in rows)
    header = ["layer", "output shape", "params"] + (["state"] if has_state else [])
    table = [[r[0], str(r[1]), f"{r[2]:,}"] + ([f"{r[3]:,}"] if has_state else []) for r in rows]
    total = ["total", "", f"{param_count(params):,}"] + ([f"{param_count(state):,}"] if has_state else [])
    widths = [max(len(h), *(len(t[i]) for t in table + [total])) for i, h in enumerate(header)]
    rule = ["-" * w for w in widths]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    return "\n".join(line(c) for c in [header, rule, *table, rule, total])
