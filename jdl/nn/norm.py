"""Normalization layers: BatchNorm, LayerNorm, InstanceNorm, GroupNorm and RMSNorm.

All of them compute, over some axes A of the input,

    μ = mean_A(x),   σ² = mean_A((x − μ)²)   (the biased variance, 1/N),
    x̂ = (x − μ) / √(σ² + ε),   y = γ·x̂ + β,

with learnable ``gamma`` (γ, init 1) and ``beta`` (β, init 0) of one value per feature
(channel), the last axis. They differ only in A, which the course draws as the shape of μ, σ
(jdl is NHWC; the course's slides are NCHW):

    layer          input          μ, σ            same in train and eval?
    BatchNorm      B × D          1 × D           no: running averages in eval
    BatchNorm      B × H × W × C  1 × 1 × 1 × C   no
    LayerNorm      B × D          B × 1           yes
    InstanceNorm   B × H × W × C  B × 1 × 1 × C   yes
    GroupNorm(G)   B × H × W × C  B × 1 × 1 × G   yes
    RMSNorm        B × D          B × 1 (no μ)    yes

Statistics are computed in at least float32 whatever the input dtype, and the output has the
input's dtype.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jdl import init as initializers
from jdl.core import Initializer, Module, Params, PRNGKey, State, check_features, check_float, leaf, shape_struct
from jdl.nn.norm_stats import _affine_params, _check_eps_momentum, _check_rank, _stat_dtype, moments, normalize


def torch_momentum(momentum: float) -> float:
    """PyTorch's BatchNorm ``momentum`` m_t equals 1 − jdl's (flax's) m: PyTorch writes
    running = (1 − m_t)·running + m_t·batch, jdl writes running = m·running + (1 − m)·batch.
    PyTorch's default m_t = 0.1 is jdl's m = 0.9. (The function is its own inverse.)"""
    return 1.0 - momentum


_BN_LAYOUTS = {2: "B, D", 3: "B, T, C", 4: "B, H, W, C"}


def _check_batch_variance(x: Any, n: int, axis_name: str | None) -> None:
    """Refuse training on one value per channel (its batch variance is 0)."""
    if n == 1 and axis_name is None:
        raise ValueError(
            f"BatchNorm: in training the variance of each channel is taken over the batch, and "
            f"an input of shape {tuple(x.shape)} gives one value per channel, whose variance "
            f"is 0; train with a batch of at least 2, or call apply(..., train=False) to use "
            f"the running statistics")


def BatchNorm(momentum: float = 0.99, eps: float = 1e-5, axis_name: str | None = None,
              gamma_init: Initializer = initializers.ones, unbiased_running_var: bool = False,
              eps_in_sqrt: bool = True) -> Module:
    """Batch normalization (Ioffe & Szegedy, 2015): normalize each feature over the batch.

    Training (``train=True``), with A every axis but the last (the batch, and H, W for images):

        μ_j = 1/N Σ_i x_ij,   σ²_j = 1/N Σ_i (x_ij − μ_j)²,
        x̂_ij = (x_ij − μ_j) / √(σ²_j + ε),   y_ij = γ_j x̂_ij + β_j,

    and the running statistics in ``state`` move towards the batch's (flax's convention):

        mean ← m·mean + (1 − m)·μ,   var ← m·var + (1 − m)·σ²        (m = ``momentum``).

    Evaluation (``train=False``) uses the running ``mean`` and ``var`` in place of μ, σ² and
    leaves ``state`` unchanged: the batch's statistics "can't be computed at test time".

    The course's slides write ``running = momentum·running + (1 − momentum)·sample`` "with
    momentum ~0.1", which is PyTorch's number read the other way round. PyTorch's ``momentum``
    m_t is 1 − m (``torch_momentum``): its default 0.1 is m = 0.9 here; flax's default is 0.99.
    PyTorch also keeps the unbiased variance N/(N − 1)·σ² in its running ``var`` (the output
    in training uses the biased σ² in both); pass ``unbiased_running_var=True`` to do the same.

    ε goes under the root, √(σ² + ε), as in the paper, PyTorch and flax. One course sheet writes
    γ ⊙ (x − μ̂_B)/(σ̂_B + ε) + β instead: ``eps_in_sqrt=False`` (in evaluation too, with the
    running σ = √var). For σ ≫ √ε the two agree to about ε/σ relative; for a nearly constant
    channel (σ → 0) the sheet's form divides by ε instead of √ε, amplifying by up to 1/ε.

    Which axes are normalized (μ, σ have the shape on the right):

        x : B × D          →  μ, σ : 1 × D           (fully connected, BatchNorm1d)
        x : B × H × W × C  →  μ, σ : 1 × 1 × 1 × C   (spatial batchnorm, BatchNorm2d)

    Params: ``gamma`` (C,), ``beta`` (C,). State: ``mean`` (C,) = 0 and ``var`` (C,) = 1 at init:
    2C learnable values and 2C running statistics. A layer before BatchNorm needs no bias.

    Shapes: x (B, D), (B, T, C) or (B, H, W, C) → y of the same shape.

    Args:
      momentum: m in [0, 1), the weight of the old running value.
      eps: ε added to the variance.
      axis_name: a named axis (of ``vmap``, ``shard_map``, ``pmap``) over which the batch
        statistics are also averaged, so that shards of a batch normalize with the whole batch's.
      gamma_init: initializer of γ (``jdl.init.zeros`` for the last BN of a residual branch).
      unbiased_running_var: keep N/(N − 1)·σ² in the running ``var``, as PyTorch does.
      eps_in_sqrt: divide by √(σ² + ε) (True) or by σ + ε (False, the course sheet's form).
    """
    _check_eps_momentum("BatchNorm", eps, momentum)

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        x = shape_struct(x)
        _check_rank("BatchNorm", x, _BN_LAYOUTS)
        check_float("BatchNorm", x)
        c, dtype = x.shape[-1], _stat_dtype(x.dtype)
        return _affine_params(key, x, gamma_init), {"mean": jnp.zeros((c,), dtype), "var": jnp.ones((c,), dtype)}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False):
        del key
        _check_rank("BatchNorm", x, _BN_LAYOUTS)
        check_features("BatchNorm", x, params["gamma"].shape[0], what="C")
        axes = tuple(range(x.ndim - 1))  # every axis but the channels
        xf = x.astype(_stat_dtype(x.dtype))
        if not train:
            lead = (1,) * (x.ndim - 1)
            mean, var = state["mean"].reshape(*lead, -1), state["var"].reshape(*lead, -1)  # (1, …, C)
            y = normalize(xf, mean, var, params["gamma"], params["beta"], eps, eps_in_sqrt)
            return y.astype(x.dtype), state
        n = x.size // x.shape[-1]  # values per channel in this shard
        _check_batch_variance(x, n, axis_name)
        mean, var = moments(xf, axes, axis_name)  # (1, …, 1, C)
        y = normalize(xf, mean, var, params["gamma"], params["beta"], eps, eps_in_sqrt)
        mu, sigma2 = mean.reshape(-1), var.reshape(-1)  # (C,)
        if unbiased_running_var:
            total = n if axis_name is None else jax.lax.psum(n, axis_name)
            sigma2 = sigma2 * total / jnp.maximum(total - 1, 1)
        ema = lambda running, batch: (momentum * running + (1 - momentum) * batch).astype(running.dtype)
        new_state = {"mean": ema(state["mean"], mu), "var": ema(state["var"], sigma2)}
        return y.astype(x.dtype), new_state

    return leaf(init, apply, "batchnorm")


def _stateless_norm(name: str, layouts: dict[int, str] | int, eps: float, stats, use_beta: bool = True) -> Module:
    """A norm layer with no state: ``stats(x) -> (μ or None, σ²)`` picks the axes."""
    _check_eps_momentum(name, eps)

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        x = shape_struct(x)
        _check_rank(name, x, layouts)
        check_float(name, x)
        jax.eval_shape(stats, x)  # the shape checks (GroupNorm's divisibility) at init too
        return _affine_params(key, x, initializers.ones, use_beta), {}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False):
        del key, train
        _check_rank(name, x, layouts)
        check_features(name, x, params["gamma"].shape[0], what="C")
        xf = x.astype(_stat_dtype(x.dtype))
        mean, var = stats(xf)
        y = normalize(xf, 0.0 if mean is None else mean, var, params["gamma"], params.get("beta"), eps)
        return y.astype(x.dtype), state

    return leaf(init, apply, name.lower())


def LayerNorm(eps: float = 1e-5) -> Module:
    """Layer normalization (Ba et al., 2016): normalize each example over its features.

        μ_i = 1/D Σ_j x_ij,   σ²_i = 1/D Σ_j (x_ij − μ_i)²,   y_ij = γ_j (x_ij − μ_i)/√(σ²_i + ε) + β_j

        x : B × D          →  μ, σ : B × 1           γ, β : 1 × D
        x : B × T × C      →  μ, σ : B × T × 1       (per token: the transformer's LayerNorm)

    The same in training and evaluation (no batch statistics), so it works for any batch size
    and in recurrent networks and Transformers. ε = 1e-5 as in PyTorch (flax's default is 1e-6).

    Shapes: x (..., D) of rank ≥ 2 → y of the same shape. Params: ``gamma``, ``beta`` (D,).
    """
    return _stateless_norm("LayerNorm", 2, eps, lambda x: moments(x, (-1,)))  # any rank ≥ 2, as flax


def InstanceNorm(eps: float = 1e-5) -> Module:
    """Instance normalization (Ulyanov et al., 2016): normalize each example and channel over
    its spatial positions.

        μ_bc = 1/(HW) Σ_{h,w} x_bhwc,   σ²_bc = 1/(HW) Σ_{h,w} (x_bhwc − μ_bc)²

        x : B × H × W × C  →  μ, σ : B × 1 × 1 × C   γ, β : 1 × 1 × 1 × C
        x : B × T × C      →  μ, σ : B × 1 × C

    The same in training and evaluation. Shapes: x (B, H, W, C) or (B, T, C) → same shape.
    Params: ``gamma``, ``beta`` (C,).
    """
    layouts = {3: "B, T, C", 4: "B, H, W, C"}
    return _stateless_norm("InstanceNorm", layouts, eps,
                           lambda x: moments(x, tuple(range(1, x.ndim - 1))))


def GroupNorm(n_groups: int, eps: float = 1e-5) -> Module:
    """Group normalization (Wu & He, 2018): split the C channels into G groups of C/G and
    normalize each example and group over its spatial positions and the group's channels.

        x : B × H × W × C  →  (B × H × W × G × C/G)  →  μ, σ : B × 1 × 1 × G × 1

    G = 1 is LayerNorm over (H, W, C); G = C is InstanceNorm. γ, β are per channel (C,).
    The same in training and evaluation.

    Shapes: x (B, C), (B, T, C) or (B, H, W, C) with C divisible by G → same shape.
    """
    if not isinstance(n_groups, int) or n_groups < 1:
        raise ValueError(f"GroupNorm: n_groups must be a positive int, got {n_groups!r}")
    layouts = {2: "B, C", 3: "B, T, C", 4: "B, H, W, C"}

    def stats(x):
        c = x.shape[-1]
        if c % n_groups:
            raise ValueError(f"GroupNorm: n_groups={n_groups} does not divide the C={c} channels "
                             f"of the input {tuple(x.shape)}; pick a divisor of {c}")
        xg = x.reshape(*x.shape[:-1], n_groups, c // n_groups)  # (B, ..., G, C/G)
        axes = tuple(range(1, x.ndim - 1)) + (x.ndim,)  # the spatial axes and C/G
        mean, var = moments(xg, axes)  # (B, 1, .., G, 1)
        per_channel = lambda s: jnp.repeat(s[..., 0], c // n_groups, axis=-1)  # (B, 1, .., C)
        return per_channel(mean), per_channel(var)

    return _stateless_norm("GroupNorm", layouts, eps, stats)


def RMSNorm(eps: float = 1e-6) -> Module:
    """Root-mean-square normalization (Zhang & Sennrich, 2019), the modern LayerNorm of LLMs:
    no centring and no β,

        rms_i = √(1/D Σ_j x_ij² + ε),   y_ij = γ_j x_ij / rms_i

        x : B × D      →  rms : B × 1        γ : 1 × D
        x : B × T × C  →  rms : B × T × 1

    The same in training and evaluation. ε = 1e-6 as in flax.
    Shapes: x (..., D) of rank ≥ 2 → same shape. Params: ``gamma`` (D,).
    """
    return _stateless_norm("RMSNorm", 2, eps,
                           lambda x: (None, jnp.mean(jnp.square(x), axis=-1, keepdims=True)),
                           use_beta=False)
