"""Combinators: bigger modules from smaller ones, all plain functions returning a ``Module``.

Each child ``i`` keeps its params and state under the key ``f"{i}_{child.name}"`` (or under its
own name, given with ``named('layer1', child)``) and gets its own random key
``jax.random.fold_in(key, i)``, so results never depend on call order — nor on the names.

A combinator accepts the keywords any of its children accepts (``Module.accepts``) and hands
each child only those in that child's ``accepts``: ``serial(Dense(8), residual(attn))`` passes
``mask=`` to ``attn`` alone, and refuses a keyword no child takes (``trian=True``).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from jdl.core import Module, Params, PRNGKey, State, check_keywords, fold_in, leaf, shape_struct


def as_module(layer: Module | Callable[..., Any], name: str | None = None) -> Module:
    """A ``Module`` as is, or a plain array function ``f(x) -> y`` (``jax.nn.relu``) wrapped as
    a parameter-free module named after the function."""
    if isinstance(layer, Module):
        return layer
    if not callable(layer):
        raise TypeError(f"serial/parallel: expected a jdl Module or a function, got {layer!r}")
    fname = name or getattr(layer, "__name__", type(layer).__name__)

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        del key, x
        return {}, {}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False):
        del params, key, train
        return layer(x), state

    return leaf(init, apply, fname.lower().strip("_<>"))


def named(name: str, layer: Module | Callable[..., Any]) -> Module:
    """``layer`` keyed by ``name`` in the combinator that holds it, in place of its position:
    ``serial(named('conv1', Conv2D(8, 3)), relu)`` has params ``{'conv1': …, '1_relu': {}}``.

    Only the key changes: the child still draws its init key by position (``fold_in(key, i)``),
    so a named model given the same params computes exactly what the positional one does.
    Readable keys make checkpoints, ``freeze`` patterns and weight converters read like the
    paper (``layer1/block0/branch/conv1``).
    """
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"named: a name is a non-empty string without '/', got {name!r}")
    return as_module(layer)._replace(param_name=name)


def child_names(layers: tuple[Module, ...]) -> list[str]:
    """The params/state keys of a combinator's children: a child's ``named`` name, else
    '{index}_{name}' ('0_dense', '1_relu'). Raises ``ValueError`` for a repeated key."""
    names = [m.param_name or f"{i}_{m.name}" for i, m in enumerate(layers)]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"combinator: children share the params key(s) {repeated}; give each a "
                         f"different name with jdl.nn.named")
    return names


def union_accepts(layers: tuple[Module, ...]) -> frozenset[str]:
    """The keywords a combinator accepts: those any of its children accepts."""
    return frozenset().union(*(m.accepts for m in layers))


def keywords_for(child: Module, extra: dict[str, Any]) -> dict[str, Any]:
    """The keywords of ``extra`` that ``child`` accepts; the rest are for its siblings."""
    return {k: v for k, v in extra.items() if k in child.accepts}


def serial(*layers: Module | Callable[..., Any]) -> Module:
    """Composition: y = f_n(… f_2(f_1(x))). Params are ``{'0_dense': …, '1_relu': {}, …}``.

    Shapes: x → whatever the last layer returns. A keyword input (``mask=...``) reaches the
    children that accept it.
    """
    if not layers:
        raise ValueError("serial: needs at least one layer")
    mods = tuple(as_module(m) for m in layers)
    names, accepts = child_names(mods), union_accepts(mods)

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        params, state = {}, {}
        x = jax.tree.map(shape_struct, x)
        for i, (n, m) in enumerate(zip(names, mods)):
            params[n], state[n] = m.init(jax.random.fold_in(key, i), x)
            x = jax.eval_shape(lambda p, s, x, m=m: m.apply(p, s, x)[0], params[n], state[n], x)
        return params, state

    def apply(params: Params, state: State, x: Any, *, key=None, train=False, **extra):
        check_keywords("serial", extra, accepts, combinator=True)
        new_state = {}
        for i, (n, m) in enumerate(zip(names, mods)):
            x, new_state[n] = m.apply(params[n], state.get(n, {}), x, key=fold_in(key, i), train=train,
                                      **keywords_for(m, extra))
        return x, new_state

    return Module(init, apply, "serial", mods, accepts)


def parallel(*layers: Module | Callable[..., Any]) -> Module:
    """Fan-out: (y_1, …, y_n) = (f_1(x), …, f_n(x)) when x is one array, or
    (f_1(x_1), …, f_n(x_n)) when x is a tuple of n inputs. Returns a tuple; combine it with a
    function such as ``lambda ys: jnp.concatenate(ys, -1)`` in a ``serial``."""
    if not layers:
        raise ValueError("parallel: needs at least one layer")
    mods = tuple(as_module(m) for m in layers)
    names, accepts = child_names(mods), union_accepts(mods)

    def split(x: Any) -> tuple[Any, ...]:
        if isinstance(x, (tuple, list)):
            if len(x) != len(mods):
                raise ValueError(f"parallel: got a tuple of {len(x)} inputs for {len(mods)} branches")
            return tuple(x)
        return (x,) * len(mods)

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        out = [m.init(jax.random.fold_in(key, i), xi) for i, (m, xi) in enumerate(zip(mods, split(x)))]
        return {n: p for n, (p, _) in zip(names, out)}, {n: s for n, (_, s) in zip(names, out)}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False, **extra):
        check_keywords("parallel", extra, accepts, combinator=True)
        ys, new_state = [], {}
        for i, (n, m, xi) in enumerate(zip(names, mods, split(x))):
            y, new_state[n] = m.apply(params[n], state.get(n, {}), xi, key=fold_in(key, i), train=train,
                                      **keywords_for(m, extra))
            ys.append(y)
        return tuple(ys), new_state

    return Module(init, apply, "parallel", mods, accepts)


def residual(layer: Module | Callable[..., Any],
             shortcut: Module | Callable[..., Any] | None = None, *,
             activation: Callable[[Any], Any] | None = None) -> Module:
    """Skip connection: y = F(x) + x, or y = F(x) + S(x) with a shortcut S (a 1×1 projection
    when shapes change), or y = σ(F(x) + S(x)) with an ``activation`` σ after the sum (the
    ResNet block's form). Its gradient ∂L/∂x = ∂L/∂y·(1 + F'(x)) keeps a path of 1 through
    any depth, which is why deep residual networks still train.

    Shapes: F(x) and x (or S(x)) must have the same shape; checked at ``init``.
    """
    body = as_module(layer)
    mods = (body,) if shortcut is None else (body, as_module(shortcut))
    names = child_names(mods)
    accepts = union_accepts(mods)
    post = (lambda y: y) if activation is None else activation

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        x = jax.tree.map(shape_struct, x)
        params, state = {}, {}
        outs = []
        for i, (n, m) in enumerate(zip(names, mods)):
            params[n], state[n] = m.init(jax.random.fold_in(key, i), x)
            outs.append(jax.eval_shape(lambda p, s, x, m=m: m.apply(p, s, x)[0], params[n], state[n], x))
        skip = outs[1] if shortcut is not None else x
        if outs[0].shape != skip.shape:
            raise ValueError(
                f"residual: the branch maps {tuple(x.shape)} to {tuple(outs[0].shape)} but the "
                f"shortcut gives {tuple(skip.shape)}; pass shortcut=a projection (e.g. a 1x1 "
                f"convolution or Dense) that produces {tuple(outs[0].shape)}")
        return params, state

    def apply(params: Params, state: State, x: Any, *, key=None, train=False, **extra):
        check_keywords("residual", extra, accepts, combinator=True)
        new_state = {}
        fx, new_state[names[0]] = body.apply(params[names[0]], state.get(names[0], {}), x,
                                             key=fold_in(key, 0), train=train,
                                             **keywords_for(body, extra))
        if shortcut is None:
            sx = x
        else:
            sx, new_state[names[1]] = mods[1].apply(params[names[1]], state.get(names[1], {}), x,
                                                    key=fold_in(key, 1), train=train,
                                                    **keywords_for(mods[1], extra))
        return post(fx + sx), new_state

    return Module(init, apply, "residual", mods, accepts)


def repeat(layer: Module | Callable[..., Any], n: int, unroll: int | bool = 1,
           impl: str = "scan") -> Module:
    """n copies of ``layer`` with independent params: y = f_{θ_n}(… f_{θ_1}(x)).

    The params of the copies are stacked on a new leading axis (a leaf of shape S becomes
    (n, *S)) and the copies run under ``jax.lax.scan``, so a 48-layer stack traces and compiles
    one layer's worth of code. Copy i is initialized with ``fold_in(key, i)`` and applied with
    ``fold_in(key, i)``, exactly like ``serial`` of n copies, so ``repeat(f, n)`` equals
    ``serial(f, …, f)`` given the same (unstacked) params.

    Shapes: the layer must map x to an output of x's shape and dtype (checked at ``init``).

    ``unroll`` is ``jax.lax.scan``'s: how many layers one loop iteration runs (``True``: all).
    Compile time grows with it; XLA can fuse across the unrolled layers. The trade-off on
    XLA:CPU (2 cores, 24 Dense+tanh blocks, batch 128, benchmarks/NOTES.md): the rolled loop
    compiles in constant time but its training step took 1.3–1.8× a Python loop's, while
    ``unroll=True`` stepped within ~7% of the Python loop once page faults were out of the way.

    ``impl``: 'scan' (default, the definition above, JAX transposes the scan) or 'custom_vjp',
    the same values and gradients from ``jdl.kernels.repeat``'s hand-written reverse rule (all
    layers' weight gradients as one batched computation after the backward scan, the layer's
    pullback split at the jaxpr level: ``save='split'``). 'custom_vjp'
    is reverse-mode only (``jax.jvp`` raises) and takes stateless layers only (no BatchNorm).
    On XLA:CPU it measured about as fast as 'scan', a little faster at 24 layers, still well
    behind the unrolled loop (benchmarks/NOTES.md, "A custom VJP for repeat").
    """
    body = as_module(layer)
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"repeat: n must be a positive int, got {n!r}")
    if impl not in ("scan", "custom_vjp"):
        raise ValueError(f"repeat: impl must be 'scan' or 'custom_vjp', got {impl!r}")

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        x = jax.tree.map(shape_struct, x)
        keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n))
        params, state = jax.vmap(body.init, in_axes=(0, None))(keys, x)
        p0, s0 = jax.tree.map(lambda a: a[0], (params, state))
        y = jax.eval_shape(lambda p, s, x: body.apply(p, s, x)[0], p0, s0, x)
        if (y.shape, y.dtype) != (x.shape, x.dtype):
            raise ValueError(
                f"repeat: {body.name} maps {tuple(x.shape)} {x.dtype} to {tuple(y.shape)} "
                f"{y.dtype}; a repeated layer must keep its input's shape and dtype")
        return params, state

    def apply(params: Params, state: State, x: Any, *, key=None, train=False, **extra):
        check_keywords("repeat", extra, body.accepts, combinator=True)
        if impl == "custom_vjp":
            return _repeat_custom_vjp(body, n, params, state, x, key, train, unroll, extra)

        def one_layer(h, inputs):
            i, p, s = inputs
            h, s = body.apply(p, s, h, key=None if key is None else jax.random.fold_in(key, i),
                              train=train, **extra)
            return h, s

        y, new_state = jax.lax.scan(one_layer, x, (jnp.arange(n), params, state), unroll=unroll)
        return y, new_state

    return Module(init, apply, "repeat", (body,), body.accepts)


def _repeat_custom_vjp(body: Module, n: int, params: Params, state: State, x: Any, key, train: bool,
                       unroll: int | bool, extra: dict[str, Any]) -> tuple[Any, State]:
    """``repeat``'s apply through ``jdl.kernels.repeat.stack_custom_vjp`` (stateless layers)."""
    from jdl.kernels.repeat import stack_custom_vjp  # jdl.kernels builds on jdl.nn

    if jax.tree.leaves(state):
        raise ValueError(f"repeat(impl='custom_vjp'): {body.name} has state (e.g. BatchNorm's "
                         f"running statistics), which the custom VJP does not carry; use "
                         f"repeat(..., impl='scan')")
    keys = None if key is None else jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n))
    f = lambda p, h, k, **kw: body.apply(p, {}, h, key=k, train=train, **kw)[0]
    return stack_custom_vjp(f, params, x, keys, extra, unroll=unroll, save="split"), state
