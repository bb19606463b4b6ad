"""The computation graph made visible: the atomic operations JAX traced for a function.

``jax.make_jaxpr`` records every primitive a function applies (``dot_general`` for Wx,
``add`` for + b, ``select_n`` for ReLU's where(z > 0, z, 0), ``exp``/``log``/``reduce_sum`` for
the loss). ``trace_graph`` flattens that jaxpr (inlining the small ``jit`` helpers of
``jax.numpy``), names inputs after their pytree paths (``1_dense/w``), and with
``backward=True`` traces ``jax.value_and_grad`` instead and marks every op that only the
gradient needs as *backward*: the transposed matmuls, the masks of ReLU, the sums over the
batch. ``graph_text`` lists the ops one per line; ``to_dot`` writes a Graphviz DOT file
(``dot -Tpng graph.dot -o graph.png``) with the forward and backward ops in two clusters.

    >>> import jax.numpy as jnp
    >>> g = trace_graph(lambda w, x: jnp.tanh(x @ w).sum(), jnp.ones((3, 2)), jnp.ones((4, 3)))
    >>> [op.label for op in g.ops]
    ['matmul', 'tanh', 'Σ']
"""

from __future__ import annotations

import itertools
import re
from typing import Any, Callable, NamedTuple

import jax

from jdl.core import path_str

# primitives whose inner jaxpr is inlined (helpers such as jnp.where are traced as small jits)
_INLINE = {"jit", "pjit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call",
           "custom_vjp_call_jaxpr", "remat", "checkpoint"}
# plumbing that only moves or re-types data: hidden by default, its output aliased to its input
PLUMBING = ("broadcast_in_dim", "reshape", "convert_element_type", "stop_gradient", "squeeze",
            "expand_dims", "copy", "copy_p")
_LABELS = {"dot_general": "matmul", "add": "+", "add_any": "+", "sub": "−", "mul": "×", "div": "÷",
           "neg": "neg", "logistic": "σ", "select_n": "where", "gt": ">", "ge": "≥", "lt": "<",
           "eq": "==", "reduce_sum": "Σ", "reduce_max": "max", "max": "max", "integer_pow": "^",
           "transpose": "transpose", "exp": "exp", "log": "log", "tanh": "tanh", "log1p": "log1p"}


class Op(NamedTuple):
    """One atomic operation: its primitive, a readable label, input and output node names,
    the output's dtype and shape (``f32[3,4]``), and whether only the gradient needs it."""

    primitive: str
    label: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    shape: str
    backward: bool


class Graph(NamedTuple):
    """``inputs``: {node: readable name (pytree path) and shape}; ``ops`` in execution order;
    ``outputs``: {node: name} (``loss``, ``∂loss/∂1_dense/w``, …)."""

    inputs: dict[str, str]
    ops: list[Op]
    outputs: dict[str, str]


def _is_node(name: str) -> bool:
    """Node names are n7, in0, const3; anything else is a literal (0.0, 2, inf)."""
    return re.fullmatch(r"(n|in|const)\d+", name) is not None


def _short(v: Any) -> str:
    aval = v.aval
    return f"{aval.dtype.name.replace('float', 'f').replace('int', 'i')}{list(aval.shape)}".replace(" ", "")


def _sub_jaxpr(eqn: Any) -> Any | None:
    if eqn.primitive.name not in _INLINE:
        return None
    for value in eqn.params.values():
        if hasattr(value, "eqns"):
            return value
        if hasattr(value, "jaxpr") and hasattr(value.jaxpr, "eqns"):
            return value.jaxpr
    return None


def _flatten(jaxpr: Any, env: dict, counter: itertools.count, ops: list) -> None:
    """Append the eqns of ``jaxpr`` to ``ops`` as raw (primitive, params, ins, outs, shape),
    recursing into inlined sub-jaxprs; ``env`` maps this scope's Vars to node names."""

    def name(v):
        return f"{v.val}" if hasattr(v, "val") else env[v]

    for eqn in jaxpr.eqns:
        ins = [name(v) for v in eqn.invars]
        inner = _sub_jaxpr(eqn)
        if inner is not None:
            inner_env = dict(zip(inner.invars, ins))
            inner_env.update({c: f"const{next(counter)}" for c in inner.constvars})
            _flatten(inner, inner_env, counter, ops)
            for outer, inner_out in zip(eqn.outvars, inner.outvars):
                env[outer] = (f"{inner_out.val}" if hasattr(inner_out, "val") else inner_env[inner_out])
            continue
        outs = []
        for v in eqn.outvars:
            env[v] = f"n{next(counter)}"
            outs.append(env[v])
        ops.append((eqn.primitive.name, dict(eqn.params), tuple(ins), tuple(outs), _short(eqn.outvars[0])))


def _label(prim: str, params: dict) -> str:
    if prim == "integer_pow":
        return f"^{params.get('y')}"
    return _LABELS.get(prim, prim)


def trace_graph(fn: Callable[..., Any], *args: Any, backward: bool = False,
                simplify: bool = True) -> Graph:
    """The ops of ``fn(*args)`` (or of ``jax.value_and_grad(fn)(*args)`` with ``backward=True``,
    the gradient taken with respect to the first argument, so fn must return a scalar).

    ``simplify`` hides ``PLUMBING`` ops (broadcasts, reshapes, casts) and ops whose results
    nobody uses. Inputs are named after their pytree paths in ``args`` (``1/b``: argument 1,
    key ``b``; without the argument index when there is one argument: ``1_dense/w``).
    """
    traced = jax.value_and_grad(fn) if backward else fn
    closed = jax.make_jaxpr(traced)(*args)
    jaxpr, counter = closed.jaxpr, itertools.count()
    env, inputs = {}, {}
    leaves = jax.tree_util.tree_flatten_with_path(args)[0]
    for v, (path, _) in zip(jaxpr.invars, leaves):
        env[v] = f"in{next(counter)}"
        inputs[env[v]] = f"{path_str(path[1:] if len(args) == 1 else path)} {_short(v)}"
    for v in jaxpr.constvars:
        env[v] = f"const{next(counter)}"
        inputs[env[v]] = f"const {_short(v)}"
    raw: list = []
    _flatten(jaxpr, env, counter, raw)
    out_names = [f"{v.val}" if hasattr(v, "val") else env[v] for v in jaxpr.outvars]
    if backward:
        grads = [path_str(p) for p, _ in jax.tree_util.tree_flatten_with_path(args[0])[0]]
        names = ["loss"] + [f"∂loss/∂{g}" for g in grads]
    else:
        names = [f"out{i}" for i in range(len(out_names))]
    outputs: dict[str, str] = {}
    for node, out in zip(out_names, names):  # two outputs may be one node (e.g. two zero gradients)
        outputs[node] = f"{outputs[node]}, {out}" if node in outputs else out
    alias: dict[str, str] = {}
    if simplify:
        for prim, _, ins, outs, _ in raw:
            var_ins = [i for i in ins if _is_node(i)]
            if prim in PLUMBING and var_ins and len(outs) == 1:
                alias[outs[0]] = alias.get(var_ins[0], var_ins[0])
    resolve = lambda n: alias.get(n, n)
    kept = [(p, prm, tuple(map(resolve, ins)), outs, s) for p, prm, ins, outs, s in raw
            if outs[0] not in alias]
    resolved: dict[str, str] = {}
    for node, out in outputs.items():
        node = resolve(node)
        resolved[node] = f"{resolved[node]}, {out}" if node in resolved else out
    outputs = resolved
    live = _ancestors(kept, set(outputs)) if simplify else {o for op in kept for o in op[3]}
    forward = _ancestors(kept, {resolve(n) for n in (out_names[:1] if backward else out_names)})
    ops = [Op(p, _label(p, prm), ins, outs, s, backward and not (set(outs) & forward))
           for p, prm, ins, outs, s in kept if set(outs) & live]
    return Graph(inputs, ops, outputs)


def _ancestors(ops: list, roots: set[str]) -> set[str]:
    """Every node name the ``roots`` depend on (roots included), walking ops backwards."""
    need = set(roots)
    for _, _, ins, outs, _ in reversed(ops):
        if set(outs) & need:
            need.update(ins)
    return need


def graph_text(graph: Graph) -> str:
    """One line per input, op and output, ops tagged fwd or bwd:
    ``fwd  n7 f32[3,4] = matmul(in1, n5)  (dot_general)``."""
    lines = [f"input  {n:>7} = {desc}" for n, desc in graph.inputs.items()]
    for op in graph.ops:
        prim = "" if op.label == op.primitive else f"  ({op.primitive})"
        lines.append(f"{'bwd' if op.backward else 'fwd':<6} {', '.join(op.outputs):>7} {op.shape} = "
                     f"{op.label}({', '.join(op.inputs)}){prim}")
    lines += [f"output {n:>7} = {name}" for n, name in graph.outputs.items()]
    return "\n".join(lines)


def to_dot(graph: Graph, title: str = "jdl") -> str:
    """The graph in Graphviz DOT: inputs as ellipses, forward ops as blue boxes, backward ops as
    red boxes (in clusters ``forward`` and ``backward``), outputs as double octagons; edges
    carry data from producer to consumer."""
    q = lambda s: '"' + str(s).replace('"', r'\"') + '"'
    producer = {o: f"op{i}" for i, op in enumerate(graph.ops) for o in op.outputs}
    lines = [f"digraph {q(title)} {{", "  rankdir=TB;", '  node [fontname="Helvetica", fontsize=10];']
    for n, desc in graph.inputs.items():
        lines.append(f"  {q(n)} [shape=ellipse, label={q(desc)}];")
    for part, color in (("forward", "lightblue"), ("backward", "mistyrose")):
        lines.append(f"  subgraph cluster_{part} {{ label={q(part)}; style=dashed;")
        for i, op in enumerate(graph.ops):
            if op.backward == (part == "backward"):
                lines.append(f"    {q(f'op{i}')} [shape=box, style=filled, fillcolor={color}, "
                             f"label={q(op.label + chr(10) + op.shape)}];")
        lines.append("  }")
    for i, op in enumerate(graph.ops):
        for src in op.inputs:
            if src in producer or src in graph.inputs:
                lines.append(f"  {q(producer.get(src, src))} -> {q(f'op{i}')};")
    for n, name in graph.outputs.items():
        lines.append(f"  {q('out_' + n)} [shape=doubleoctagon, label={q(name)}];")
        lines.append(f"  {q(producer.get(n, n))} -> {q('out_' + n)};")
    lines.append("}")
    return "\n".join(lines)


def model_graph(model: Any, params: Any, state: Any, x: Any, loss_fn: Callable | None = None,
                y: Any = None, simplify: bool = True) -> Graph:
    """The graph of a ``jdl.Module``: of ``loss_fn(model.apply(params, state, x)[0], y)`` with its
    backward ops when a loss is given, otherwise of the forward pass alone. Inputs are named
    after the params' paths (``1_dense/w``); x, y and state appear as constants."""

    if loss_fn is None:
        return trace_graph(lambda p: model.apply(p, state, x)[0], params, simplify=simplify)
    return trace_graph(lambda p: loss_fn(model.apply(p, state, x)[0], y), params, backward=True,
                       simplify=simplify)
