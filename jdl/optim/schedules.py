"""Learning-rate schedules: functions t ↦ η_t of the update count t (an int32 scalar), usable as
any optimizer's ``learning_rate`` and jit-friendly. Names and arguments follow optax where optax
has the schedule; the course's decays are the closed forms in each docstring.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Sequence

import jax.numpy as jnp

from jdl.optim.base import Schedule, check_nonnegative, check_positive


def _check_steps(name: str, arg: str, steps: int) -> None:
    if int(steps) != steps or steps <= 0:
        raise ValueError(f"{name}: {arg} must be a positive integer, got {steps!r}")


def constant_schedule(value: float) -> Schedule:
    """η_t = η₀ for every t."""
    check_nonnegative("constant_schedule", "value", value)
    return lambda count: jnp.full([], value, jnp.float32)


def exponential_decay(init_value: float, transition_steps: int, decay_rate: float,
                      transition_begin: int = 0, staircase: bool = False,
                      end_value: float | None = None) -> Schedule:
    """η_t = η₀ · r^((t − t₀)/T) for t ≥ t₀ (η₀ before), i.e. the course's η₀·e^(−k·t) with
    k = −ln(r)/T; ``staircase`` uses ⌊(t − t₀)/T⌋ (step decay); ``end_value`` bounds the decay.

    Args: init_value: η₀; transition_steps: T > 0; decay_rate: r > 0; transition_begin: t₀ ≥ 0.
    """
    _check_steps("exponential_decay", "transition_steps", transition_steps)
    check_positive("exponential_decay", "decay_rate", decay_rate)

    def schedule(count):
        p = jnp.maximum(count - transition_begin, 0).astype(jnp.float32) / transition_steps
        if staircase:
            p = jnp.floor(p)
        value = init_value * jnp.power(decay_rate, p)
        if end_value is not None:
            bound = jnp.maximum if decay_rate < 1 else jnp.minimum
            value = bound(value, end_value)
        return value

    return schedule


def exponential_rate(init_value: float, k: float) -> Schedule:
    """The course's form η_t = η₀·e^(−k·t), k ≥ 0 (= ``exponential_decay(η₀, 1, e^(−k))``)."""
    check_nonnegative("exponential_rate", "k", k)
    return exponential_decay(init_value, 1, math.exp(-k))


def step_decay(init_value: float, step_size: int, factor: float = 0.5) -> Schedule:
    """η_t = η₀ · factor^⌊t / T₀⌋: halve (factor 0.5) every T₀ steps, or any factor in (0, 1]."""
    if not 0 < factor <= 1:
        raise ValueError(f"step_decay: factor must be in (0, 1], got {factor!r}")
    return exponential_decay(init_value, step_size, factor, staircase=True)


def inverse_time_decay(init_value: float, decay_rate: float, decay_steps: int = 1,
                       staircase: bool = False) -> Schedule:
    """η_t = η₀ / (1 + k·t/T) (the course's η₀/(1+k·t) with T = 1); ``staircase`` uses ⌊t/T⌋.

    Args: init_value: η₀; decay_rate: k ≥ 0; decay_steps: T > 0.
    """
    check_nonnegative("inverse_time_decay", "decay_rate", decay_rate)
    _check_steps("inverse_time_decay", "decay_steps", decay_steps)

    def schedule(count):
        p = jnp.asarray(count, jnp.float32) / decay_steps
        if staircase:
            p = jnp.floor(p)
        return init_value / (1 + decay_rate * p)

    return schedule


def cosine_decay_schedule(init_value: float, decay_steps: int, alpha: float = 0.0,
                          exponent: float = 1.0) -> Schedule:
    """η_t = η₀·((1 − α)·c_t^p + α), c_t = ½(1 + cos(π·min(t, T)/T)): from η₀ down to α·η₀ at T.

    Args: init_value: η₀; decay_steps: T > 0; alpha: the final fraction α; exponent: p.
    """
    _check_steps("cosine_decay_schedule", "decay_steps", decay_steps)

    T = float(decay_steps)  # a float: an int T past 2³¹ would not convert to int32

    def schedule(count):
        t = jnp.minimum(jnp.asarray(count, jnp.float32), T)
        cosine = 0.5 * (1 + jnp.cos(jnp.pi * t / T))
        return init_value * ((1 - alpha) * cosine ** exponent + alpha)

    return schedule


def linear_schedule(init_value: float, end_value: float, transition_steps: int,
                    transition_begin: int = 0) -> Schedule:
    """η_t = η_a + (η_b − η_a)·clip((t − t₀)/T, 0, 1): a straight line from η_a to η_b."""
    _check_steps("linear_schedule", "transition_steps", transition_steps)

    def schedule(count):
        frac = jnp.clip((count - transition_begin) / transition_steps, 0.0, 1.0)
        return init_value + (end_value - init_value) * frac

    return schedule


def polynomial_schedule(init_value: float, end_value: float, power: float, transition_steps: int,
                        transition_begin: int = 0) -> Schedule:
    """η_t = (η_a − η_b)·(1 − clip((t − t₀)/T, 0, 1))^p + η_b: from η_a to η_b along a power
    curve (p = 1 is ``linear_schedule``; p = 2 decays fast first, then flattens)."""
    _check_steps("polynomial_schedule", "transition_steps", transition_steps)

    def schedule(count):
        frac = jnp.clip((jnp.asarray(count, jnp.float32) - transition_begin) / transition_steps, 0.0, 1.0)
        return (init_value - end_value) * (1 - frac) ** power + end_value

    return schedule


def piecewise_constant_schedule(init_value: float, boundaries_and_scales: dict[int, float] | None = None) -> Schedule:
    """η_t = η₀ · Π_{b ≤ t} s_b: the learning rate multiplied by s_b from step b on (the course's
    "halve it at chosen epochs"; ``step_decay`` is the evenly spaced case).

    >>> float(piecewise_constant_schedule(1.0, {10: 0.5, 20: 0.1})(jnp.int32(25)))
    0.05000000074505806
    """
    pairs = sorted((boundaries_and_scales or {}).items())
    for boundary, scale in pairs:
        check_nonnegative("piecewise_constant_schedule", f"the scale at step {boundary}", scale)

    def schedule(count):
        value = jnp.asarray(init_value, jnp.float32)
        for boundary, scale in pairs:
            value = jnp.where(count >= boundary, value * scale, value)
        return value

    return schedule


def warmup(peak_value: float, warmup_steps: int, init_value: float = 0.0) -> Schedule:
    """Linear warmup: η_t = η_init + (η_peak − η_init)·min(t/W, 1)."""
    return linear_schedule(init_value, peak_value, warmup_steps)


def join_schedules(schedules: Sequence[Callable], boundaries: Sequence[int]) -> Schedule:
    """η_t = s_i(t − b_{i−1}) for b_{i−1} ≤ t < b_i (b_0 = 0): each schedule restarts its count.

    Args: schedules: n schedules; boundaries: the n − 1 increasing steps where the next one starts.
    """
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(f"join_schedules: {len(schedules)} schedules need {len(schedules) - 1} "
                         f"boundaries, got {len(boundaries)}")

    def schedule(count):
        value = schedules[0](count)
        for boundary, s in zip(boundaries, schedules[1:]):
            value = jnp.where(count < boundary, value, s(count - boundary))
        return value

    return schedule


def warmup_cosine_decay_schedule(init_value: float, peak_value: float, warmup_steps: int,
                                 decay_steps: int, end_value: float = 0.0, exponent: float = 1.0) -> Schedule:
    """Linear warmup from η_init to η_peak over W steps, then cosine decay to η_end at step T
    (T counts the warmup too, as in optax), the cosine raised to ``exponent``."""
    if decay_steps <= warmup_steps:
        raise ValueError(f"warmup_cosine_decay_schedule: decay_steps ({decay_steps}) must exceed "
                         f"warmup_steps ({warmup_steps})")
    alpha = 0.0 if peak_value == 0 else end_value / peak_value
    if warmup_steps == 0:  # no warmup: the cosine from t = 0 (optax's result too)
        return cosine_decay_schedule(peak_value, decay_steps, alpha, exponent)
    return join_schedules([linear_schedule(init_value, peak_value, warmup_steps),
                           cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent)],
                          [warmup_steps])



def cosine_warm_restarts(init_value: float, first_period: int, period_multiplier: int = 1,
                         min_value: float = 0.0) -> Schedule:
    """SGDR, cosine annealing with warm restarts (Loshchilov & Hutter 2017, their eq. 5):

        η_t = η_min + ½(η_max − η_min)·(1 + cos(π·T_cur/T_i)),

    T_cur the steps since the last restart, T_i = T₀·m^i the length of cycle i: η falls from
    η_max to η_min along a cosine, then jumps back to η_max. Cycle i starts at
    T₀·(m^i − 1)/(m − 1) (at i·T₀ for m = 1). PyTorch's ``CosineAnnealingWarmRestarts(T_0,
    T_mult, eta_min)`` with t counted in its ``step()`` calls; ``sgdr_schedule`` is optax's
    form (one dict per cycle).

    Args: init_value: η_max; first_period: T₀ > 0; period_multiplier: m ≥ 1, an int as in
      PyTorch; min_value: η_min.
    """
    _check_steps("cosine_warm_restarts", "first_period", first_period)
    if not isinstance(period_multiplier, int) or period_multiplier < 1:
        raise ValueError(f"cosine_warm_restarts: period_multiplier must be an int >= 1, got {period_multiplier!r}")
    starts, length = [0], first_period  # cycle starts below 2³¹ (the int32 count's range)
    while period_multiplier > 1 and starts[-1] + length < 2 ** 31:
        starts.append(starts[-1] + length)
        length *= period_multiplier
    starts_arr = jnp.asarray(starts, jnp.int32)
    periods = jnp.asarray([first_period * period_multiplier ** i for i in range(len(starts))], jnp.float32)

    def schedule(count):
        count = jnp.asarray(count, jnp.int32)
        if period_multiplier == 1:
            t_cur, t_i = (count % first_period).astype(jnp.float32), jnp.float32(first_period)
        else:
            i = jnp.searchsorted(starts_arr, count, side="right") - 1
            t_cur, t_i = (count - starts_arr[i]).astype(jnp.float32), periods[i]
        return min_value + 0.5 * (init_value - min_value) * (1 + jnp.cos(jnp.pi * t_cur / t_i))

    return schedule


def sgdr_schedule(cosine_kwargs: Iterable[dict]) -> Schedule:
    """SGDR in optax's form: cycle k is ``warmup_cosine_decay_schedule(**cosine_kwargs[k])``
    (keys init_value, peak_value, warmup_steps, decay_steps, end_value, exponent), lasting its
    ``decay_steps``, and each cycle restarts its own count (``join_schedules``).

    >>> s = sgdr_schedule([dict(init_value=0.0, peak_value=1.0, warmup_steps=0, decay_steps=10)] * 2)
    >>> [round(float(s(jnp.int32(t))), 3) for t in (0, 5, 10)]
    [1.0, 0.5, 1.0]
    """
    schedules, boundaries, start = [], [], 0
    for kwargs in cosine_kwargs:
        schedules.append(warmup_cosine_decay_schedule(**kwargs))
        start += kwargs["decay_steps"]
        boundaries.append(start)
    if not schedules:
        raise ValueError("sgdr_schedule: needs at least one cycle (a dict of warmup_cosine_decay_schedule's arguments)")
    return join_schedules(schedules, boundaries[:-1])
