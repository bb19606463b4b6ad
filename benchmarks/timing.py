"""Timing pieces shared by every workload: a trace counter (the recompilation guard), a step
timer and the statistics reported over rounds.

Method: compile and warm up first, then time blocks of ``n_steps`` consecutive steps, waiting
for the last result of each block (``block_until_ready``); one block gives one ms/step figure.
Steps depend on each other through the donated train state, so a block measures what a training
loop gets, with Python dispatch overlapping the previous step's compute as it does in real use.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any, Callable, NamedTuple


ONE_THREAD = "--xla_cpu_multi_thread_eigen=false"
# XLA_FLAGS for one thread: Eigen's own pool off. It does not size XLA:CPU's runtime pool (which
# runs the YNNPACK dots and splits loops): that pool takes as many threads as the process may
# run on, so a single-threaded measurement also needs ``pin_to_one_core`` before the backend starts.


def pin_to_one_core() -> None:
    """Restrict the calling process (and the threads it starts later) to the lowest-numbered
    core it may run on; call it first thing in the measuring child, before its first JAX call
    (not as a ``preexec_fn``: forking a parent that runs JAX's threads may deadlock). With
    ONE_THREAD it makes XLA and PyTorch (``set_num_threads(1)``) run on one core: without it
    XLA's pool still uses every core (CPU time ≈ 1.75 × wall for the char-LSTM at "one thread")."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


class Runner(NamedTuple):
    """One implementation of a workload, ready to time.

    first_call: compile (JAX) and run one step; returns {'trace_lower_s', 'first_call_s'}.
    step: run one step on the runner's own state and return something to wait for.
    sync: wait until that something is computed.
    traces: how many times the step function was traced so far (-1 where nothing traces).
    """

    first_call: Callable[[], dict]
    step: Callable[[], Any]
    sync: Callable[[Any], None]
    traces: Callable[[], int]


def trace_counter() -> tuple[Callable[[Callable], Callable], Callable[[], int]]:
    """``(counted, count)``: ``counted(f)`` wraps f so that each call adds one to ``count()``.
    Wrap a function that runs only while JAX traces (the loss inside a jitted step): the count
    is then the number of traces, and a count that grows after warm-up means a recompilation."""
    calls = [0]

    def counted(f: Callable) -> Callable:
        def wrapped(*args, **kwargs):
            calls[0] += 1
            return f(*args, **kwargs)

        return wrapped

    return counted, lambda: calls[0]


def time_blocks(runner: Runner, n_steps: int, n_blocks: int) -> tuple[list[float], list[float]]:
    """Wall and CPU ms per step of each of ``n_blocks`` blocks of ``n_steps`` steps:
    t_block / n_steps, with t_block from the first dispatch to the last result. CPU time sums
    all the process's threads (spinning included); on a loaded machine it is the steadier one."""
    wall, cpu = [], []
    for _ in range(n_blocks):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = None
        for _ in range(n_steps):
            out = runner.step()
        runner.sync(out)
        wall.append((time.perf_counter() - start) * 1e3 / n_steps)
        cpu.append((time.process_time() - start_cpu) * 1e3 / n_steps)
    return wall, cpu


def measure(runner: Runner, n_steps: int, n_blocks: int, n_warmup: int) -> dict:
    """Compile, warm up, time; raise ``RuntimeError`` if the step was traced again after warm-up.

    Returns {'trace_lower_s', 'first_call_s', 'block_ms': [...], 'step_ms': median,
    'cpu_ms': median CPU ms per step, 'traces'}.
    """
    result = runner.first_call()
    for _ in range(n_warmup):
        runner.sync(runner.step())
    traces = runner.traces()
    block_ms, cpu_ms = time_blocks(runner, n_steps, n_blocks)
    if runner.traces() != traces:
        raise RuntimeError(f"the step was traced {runner.traces() - traces} more time(s) after "
                           f"warm-up: it recompiles during timing, so the timings are wrong")
    return {**result, "block_ms": block_ms, "step_ms": statistics.median(block_ms),
            "cpu_ms": statistics.median(cpu_ms), "traces": traces}


def summarize(values: list[float]) -> dict:
    """Median, min, max and spread = (max − min) / median of a list of timings."""
    med = statistics.median(values)
    return {"median": med, "min": min(values), "max": max(values),
            "spread": (max(values) - min(values)) / med if med else 0.0, "n": len(values)}
