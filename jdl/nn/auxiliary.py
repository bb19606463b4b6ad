"""Auxiliary heads: extra classifiers on intermediate feature maps, used in training only.

GoogLeNet (Szegedy et al. 2015) attaches small classifiers to two intermediate Inception blocks
so that the lower layers receive a gradient of their own (the course's "auxiliary losses");
their losses are added to the main one with weight 0.3 (``jdl.losses.auxiliary_loss``), and at
inference the heads are dropped.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax

from jdl.core import Module, Params, PRNGKey, State, check_keywords, fold_in, shape_struct
from jdl.nn.combinators import as_module, child_names


def with_auxiliary_heads(net: Module, heads: Mapping[int, Module]) -> Module:
    """A ``serial`` network with heads reading the outputs of some of its layers:

        train=True:   (f(x), a_1(h_{i_1}), …, a_k(h_{i_k}))     h_i = output of layer i
        train=False:  f(x)                                       (the heads are not run)

    with i_1 < … < i_k the keys of ``heads``. Params and state are
    ``{'net': net's own, 'aux1': head 1's, …}``: ``params['net']`` is exactly what ``net``
    itself takes (and ``init`` gives it what ``net.init`` would with ``fold_in(key, 0)``), so
    the trained network runs without its heads as ``net.apply(params['net'], state['net'], x)``.
    Head j draws its key from ``fold_in(key, j)``.

    Shapes: x as ``net`` takes; f(x) as ``net`` returns; a_j(h) as head j returns.
    """
    if net.name != "serial" or not net.children:
        raise ValueError(f"with_auxiliary_heads: net must be a jdl.nn.serial(...) network, got a {net.name!r} module")
    layers, taps = net.children, sorted(heads)
    if not taps or any(not isinstance(i, int) or not 0 <= i < len(layers) - 1 for i in taps):
        raise ValueError(f"with_auxiliary_heads: heads must be keyed by the index of a layer before the last "
                         f"(0 … {len(layers) - 2}), got {list(heads)}")
    names, head_mods = child_names(layers), [as_module(heads[i]) for i in taps]
    aux_names = [f"aux{j + 1}" for j in range(len(taps))]

    def run(params: Params, state: State, x: Any, key, train: bool):
        """The net's layers in turn (as ``serial``), keeping the tapped outputs."""
        new_state, tapped = {}, []
        for i, (n, m) in enumerate(zip(names, layers)):
            x, new_state[n] = m.apply(params[n], state.get(n, {}), x, key=fold_in(key, i), train=train)
            if i in taps:
                tapped.append(x)
        return x, new_state, tapped

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        params, state = {}, {}
        params["net"], state["net"] = net.init(jax.random.fold_in(key, 0), x)
        x = jax.tree.map(shape_struct, x)
        tapped = jax.eval_shape(lambda p, s, x: run(p, s, x, None, False)[2], params["net"], state["net"], x)
        for j, (name, head, h) in enumerate(zip(aux_names, head_mods, tapped)):
            params[name], state[name] = head.init(jax.random.fold_in(key, j + 1), h)
        return params, state

    def apply(params: Params, state: State, x: Any, *, key=None, train=False, **extra):
        check_keywords("with_auxiliary_heads", extra, frozenset(), combinator=True)
        y, net_state, tapped = run(params["net"], state["net"], x, fold_in(key, 0), train)
        new_state = {**state, "net": net_state}
        if not train:
            return y, new_state
        outs = [y]
        for j, (name, head, h) in enumerate(zip(aux_names, head_mods, tapped)):
            a, new_state[name] = head.apply(params[name], state.get(name, {}), h, key=fold_in(key, j + 1), train=True)
            outs.append(a)
        return tuple(outs), new_state

    return Module(init, apply, "auxiliary_heads", (net, *head_mods))
