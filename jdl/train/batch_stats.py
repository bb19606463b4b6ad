"""BatchNorm population statistics recomputed over the training set after training.

In evaluation BatchNorm normalizes with its running ``mean`` and ``var``, moving averages
mean ← m·mean + (1 − m)·μ_B taken while θ was still changing, and weighted towards the last
batches. Once training is over, the statistics the course's "inference uses population
statistics" calls for can be measured exactly for the final θ: run the model in training mode
over the whole training set and pool each BatchNorm layer's batch statistics without momentum
(Wu & Johnson 2021, "precise BN"; PyTorch's ``swa_utils.update_bn``):

    μ    = 1/N Σ_b n_b·μ_b
    σ²   = 1/N Σ_b n_b·(σ²_b + (μ_b − μ)²)        (the law of total variance; N = Σ_b n_b)

with (μ_b, σ²_b) the batch statistics a layer computes on batch b of n_b examples, merged one
batch at a time in the numerically stable form of Chan et al. For the first BatchNorm these are
the exact mean and (biased) variance of its inputs over the data set; a later one sees inputs
normalized by the earlier layers' batch statistics, exactly as in training.

How μ_b, σ²_b are read without touching the layers: a BatchNorm's new state is affine in its
old one, s' = m·s + (1 − m)·stat_b. Running the model with s = 0 gives (1 − m)·stat_b, and the
forward-mode derivative ∂s'/∂s = m (``jax.jvp``, in the same pass) gives m, so
stat_b = s'/(1 − m) for every layer, whatever its momentum.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jdl.core import Module


def is_batchnorm_state(node: Any) -> bool:
    """A BatchNorm layer's state: a dict with exactly the keys ``mean`` and ``var``."""
    return isinstance(node, dict) and set(node) == {"mean", "var"}


def _batch_statistics(model: Module, params: Any, nodes: list, treedef: Any, where: list[int]):
    """``stats(x_b, key) -> [{'mean': μ_b, 'var': σ²_b}, …]`` for the BatchNorm nodes ``where``."""

    def stats(xb: jax.Array, key: jax.Array | None) -> list:
        def new_bn_states(bn: list) -> list:
            full = list(nodes)
            for i, node in zip(where, bn):
                full[i] = node
            state = jax.tree_util.tree_unflatten(treedef, full)
            _, new_state = model.apply(params, state, xb, key=key, train=True)
            new_nodes = jax.tree_util.tree_flatten(new_state, is_leaf=is_batchnorm_state)[0]
            return [new_nodes[i] for i in where]

        zeros = [jax.tree.map(jnp.zeros_like, nodes[i]) for i in where]
        ones = [jax.tree.map(jnp.ones_like, nodes[i]) for i in where]
        scaled, m = jax.jvp(new_bn_states, (zeros,), (ones,))  # (1 − m)·stat_b and m
        return jax.tree.map(lambda s, m: s / (1 - m), scaled, m)

    return jax.jit(stats)


def recompute_batch_stats(model: Module, params: Any, state: Any, x: Any, batch_size: int = 256, *,
                          key: jax.Array | None = None) -> Any:
    """``state`` with every BatchNorm's ``mean``/``var`` replaced by the population statistics
    of its inputs over ``x`` (see the module docstring); other state is kept as it is.

    The model runs with ``train=True`` on the batches x[0:b], x[b:2b], … (the last one may be
    smaller; a lone last example joins the batch before it); ``key`` (folded with the batch
    index) feeds stochastic layers such as dropout.
    The variance is the biased σ² that training normalizes with (a layer built with
    ``unbiased_running_var=True`` gets each batch's N/(N − 1)·σ²_b pooled instead).

    Shapes: x (N, ...) as the model takes. Returns: a state of ``state``'s structure.
    """
    nodes, treedef = jax.tree_util.tree_flatten(state, is_leaf=is_batchnorm_state)
    where = [i for i, node in enumerate(nodes) if is_batchnorm_state(node)]
    if not where:
        raise ValueError("recompute_batch_stats: the state has no BatchNorm layer (a dict with keys "
                         "'mean' and 'var'); nothing to recompute")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"recompute_batch_stats: batch_size must be a positive int, got {batch_size!r}")
    n_total = len(x)
    if n_total < 2:
        raise ValueError(f"recompute_batch_stats: needs at least 2 examples, got {n_total}")
    stats = _batch_statistics(model, params, nodes, treedef, where)
    starts = list(range(0, n_total, batch_size))
    if n_total - starts[-1] == 1:  # a lone last example has no batch variance: join the batch before
        starts.pop()
    count, pooled = 0, None
    for b, (start, end) in enumerate(zip(starts, [*starts[1:], n_total])):
        batch = stats(x[start:end], None if key is None else jax.random.fold_in(key, b))
        pooled = batch if pooled is None else jax.tree.map(
            lambda p, q: _merge(p, q, count, end - start), pooled, batch, is_leaf=is_batchnorm_state)
        count += end - start
    full = list(nodes)
    for i, node in zip(where, pooled):
        full[i] = jax.tree.map(lambda new, old: new.astype(old.dtype), node, nodes[i])
    return jax.tree_util.tree_unflatten(treedef, full)


def _merge(a: dict, b: dict, n_a: int, n_b: int) -> dict:
    """Chan et al.'s pooling of (μ_a, σ²_a) over n_a values with (μ_b, σ²_b) over n_b:
    δ = μ_b − μ_a, n = n_a + n_b, μ = μ_a + δ·n_b/n, σ² = (n_a·σ²_a + n_b·σ²_b + δ²·n_a·n_b/n)/n."""
    n = n_a + n_b
    delta = b["mean"] - a["mean"]
    mean = a["mean"] + delta * (n_b / n)
    var = (n_a * a["var"] + n_b * b["var"] + jnp.square(delta) * (n_a * n_b / n)) / n
    return {"mean": mean, "var": var}
