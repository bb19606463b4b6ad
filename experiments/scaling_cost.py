"""What a layer costs against sequence length: self-attention, O(n²d), against a recurrent
layer, O(nd²) (the course's comparison of attention with RNNs; Vaswani et al. 2017, table 1).

Forward FLOPs per sequence (a multiply-add = 2) of the layers measured:

    attention  softmax(QKᵀ/√d)V, one head, d_k = d_v = d:   QKᵀ 2n²d + PV 2n²d = 4n²d
    mha        MultiHeadAttention(d/64 heads, d): 4 projections 8nd² + 4n²d
    rnn        SimpleRNN(d): x_t W_x + h_{t−1} W_h              4nd²
    lstm       jdl.kernels.lstm (fused), 4 gates:               16nd²

so attention costs less than the RNN while n < d, less than the LSTM while n < 4d, and the full
MHA layer less than the LSTM while n < 2d (it never beats the plain RNN: its projections alone
cost twice the RNN's). For each layer, d and n: one jitted forward + backward (the gradient of
⟨y, dy⟩ with respect to inputs and weights), its FLOPs by XLA's ``cost_analysis``, its scratch
memory by ``memory_analysis`` (temp bytes: what the compiled program allocates beyond its
arguments and outputs) and its CPU time, the median of repeats of ``time.process_time`` in a
child process with XLA pinned to one thread (the machine is shared, so wall time is not the
measure; see benchmarks/NOTES.md).

XLA's ``cost_analysis`` counts a while loop's body once, not once per iteration: a scan over
n steps reports the FLOPs of one step. The FLOPs of one step inside the loops are the
difference between the counts with ``unroll=2`` (two steps per iteration) and ``unroll=1``, and
the recurrent layers' counts are F(n) = F_XLA(n) + (n − 1)·step, the loop parts counted n times.
(A fully unrolled compile is no reference: the transposed slices of the unrolled backward add
O(n²) elementwise work of their own.)

    python -m experiments.scaling_cost --workdir=runs/scaling_cost [--quick]
"""

from __future__ import annotations

import functools
import json
import math
import os
import statistics
import subprocess
import sys
import time

from benchmarks.timing import ONE_THREAD

LAYERS = ("attention", "mha", "rnn", "lstm")
PAIRS = (("attention", "rnn"), ("attention", "lstm"), ("mha", "lstm"), ("mha", "rnn"))


def theory_flops(layer: str, n: int, d: int) -> float:
    """Forward FLOPs of one sequence (multiply-adds counted 2, softmax and gates not counted)."""
    return {"attention": 4 * n * n * d, "mha": 8 * n * d * d + 4 * n * n * d,
            "rnn": 4 * n * d * d, "lstm": 16 * n * d * d}[layer]


def theory_crossover(a: str, b: str, d: int) -> float | None:
    """The n at which ``theory_flops`` of a and b are equal, None if they never are."""
    per_n = {"attention": (4 * d, 0), "mha": (4 * d, 8 * d * d), "rnn": (0, 4 * d * d), "lstm": (0, 16 * d * d)}
    (qa, la), (qb, lb) = per_n[a], per_n[b]  # F/n = q·n + l
    return (lb - la) / (qa - qb) if qa != qb and (lb - la) / (qa - qb) > 0 else None


def layer_grad(layer: str, n: int, d: int, batch: int, unroll: int = 1):
    """``(f, args)``: f = jit of (⟨y, dy⟩, its gradient over the layer's inputs and weights), y = layer(x);
    the value keeps the forward's last matmul alive (jax.grad alone lets XLA drop attention's PV).

    Shapes: x, dy (batch, n, d); attention takes q, k, v (batch, n, d) and has no weights.
    """
    import jax
    import jax.numpy as jnp
    import numpy as np

    import jdl
    from jdl.kernels.lstm import lstm_sequence

    key, rng = jax.random.key(0), np.random.default_rng(0)  # numpy: no compile per shape
    x, dy = (jnp.asarray(rng.standard_normal((batch, n, d), np.float32)) for _ in range(2))
    if layer == "attention":
        params, apply = (x, x), lambda p, q: jdl.nn.dot_product_attention(q, *p)
    elif layer == "mha":
        mha = jdl.nn.MultiHeadAttention(max(1, d // 64), d)
        params, apply = mha.init(key, x)[0], lambda p, h: mha.apply(p, {}, h)[0]
    elif layer == "rnn":
        params = jdl.nn.recurrent_params(key, "simple_rnn", d, d)
        apply = lambda p, h: jdl.nn.rnn_scan(p, h, unroll=unroll)[0]
    else:
        params = jdl.nn.recurrent_params(key, "lstm", d, d)
        apply = lambda p, h: lstm_sequence(p, h, impl="fused", unroll=unroll)[0]
    loss = lambda p, h, g: jnp.vdot(apply(p, h), g)
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1))), (params, x, dy)


def compiled_costs(compiled, body_flops: float | None, n: int) -> dict:
    """XLA's FLOPs and memory of a compiled forward + backward; for a recurrent layer
    F(n) = F_XLA(n) + (n − 1)·``body_flops``, the loops' bodies counted n times instead of once."""
    mem = compiled.memory_analysis()
    flops = compiled.cost_analysis()["flops"] + (0.0 if body_flops is None else (n - 1) * body_flops)
    return {"flops": flops, "temp_bytes": mem.temp_size_in_bytes,
            "argument_bytes": mem.argument_size_in_bytes, "output_bytes": mem.output_size_in_bytes}


def compile_grad(layer: str, n: int, d: int, batch: int, unroll: int = 1):
    """``(compiled, args)`` of ``layer_grad``'s function, lowered and compiled."""
    f, args = layer_grad(layer, n, d, batch, unroll=unroll)
    return f.lower(*args).compile(), args


def loop_body_flops(layer: str, d: int, batch: int, unroll: int = 2, n: int = 16,
                    compile_fn=compile_grad) -> float:
    """The FLOPs of one time step inside the recurrent layer's loops (forward and backward
    scans together): with ``unroll`` steps per loop iteration XLA counts unroll − 1 more steps,
    so (F_XLA(unroll) − F_XLA(1)) / (unroll − 1). ``compile_fn``: ``compile_grad`` or a cache of it."""
    count = lambda u: compile_fn(layer, n, d, batch, u)[0].cost_analysis()["flops"]
    return (count(unroll) - count(1)) / (unroll - 1)


def cpu_time(f, args, repeats: int, min_seconds: float = 0.02) -> tuple[float, float]:
    """Median CPU and wall seconds per call over ``repeats`` blocks of calls, each block long
    enough (≥ ``min_seconds``) for the clock; after one warm-up call."""
    import jax

    jax.block_until_ready(f(*args))
    start = time.process_time()
    jax.block_until_ready(f(*args))
    calls = max(1, math.ceil(min_seconds / max(time.process_time() - start, 1e-6)))
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(calls):
            out = f(*args)
        jax.block_until_ready(out)
        cpu.append((time.process_time() - c0) / calls)
        wall.append((time.perf_counter() - w0) / calls)
    return statistics.median(cpu), statistics.median(wall)


def measure(config: dict) -> dict:
    """Every layer × d × n of ``config``: costs, CPU and wall ms. Run in the pinned child."""
    rows, batch = [], config["batch"]
    compile_fn = functools.cache(compile_grad)  # unroll=1 at n=16 serves 3 uses: compiled once
    for d in config["d"]:
        body = {layer: loop_body_flops(layer, d, batch, compile_fn=compile_fn) for layer in ("rnn", "lstm")}
        for layer in LAYERS:
            for n in config["n"]:
                compiled, args = compile_fn(layer, n, d, batch, 1)
                cpu, wall = cpu_time(compiled, args, config["repeats"])
                rows.append({"layer": layer, "d": d, "n": n, "cpu_ms": cpu * 1e3, "wall_ms": wall * 1e3,
                             **compiled_costs(compiled, body.get(layer), n)})
        unroll4 = {k: loop_body_flops(k, d, batch, 4, compile_fn=compile_fn) for k in body}
        rows.append({"d": d, "loop_body_flops": body,  # the same step counted from unroll=4
                     "loop_body_flops_unroll4": unroll4})
    return {"rows": rows}


def measure_pinned(config: dict) -> dict:
    """``measure(config)`` in a child Python whose XLA runs on one thread: Eigen's pool off in
    XLA_FLAGS (read once, when the backend starts, so it cannot be changed in this process) and
    the child pinned to one core (XLA:CPU sizes its runtime pool by the cores it may use)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " " + ONE_THREAD).strip(),
           "JAX_PLATFORMS": "cpu", "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    code = ("import json, sys; from benchmarks.timing import pin_to_one_core; pin_to_one_core(); "
            "from experiments.scaling_cost import measure; "
            "print('RESULT ' + json.dumps(measure(json.loads(sys.argv[1]))))")
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(config)], env=env, cwd=root,
                          capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"scaling_cost: the measuring child failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def crossover(ns: list[int], a: list[float], b: list[float]) -> list[float]:
    """Every n where the curves a(n) and b(n) cross, interpolated linearly in log n and
    log(a/b) between the two measured n around it (exact for power laws); [] if a − b keeps
    its sign."""
    r = [math.log(x / y) for x, y in zip(a, b)]
    out = []
    for i in range(len(ns) - 1):
        if r[i] == 0:
            out.append(float(ns[i]))
        elif r[i] * r[i + 1] < 0:
            t = r[i] / (r[i] - r[i + 1])
            out.append(math.exp(math.log(ns[i]) + t * (math.log(ns[i + 1]) - math.log(ns[i]))))
    return out


def series(rows: list[dict], layer: str, d: int, what: str) -> list[float]:
    """``what`` of ``layer`` at width d, in the order of n."""
    picked = sorted((r for r in rows if r.get("layer") == layer and r["d"] == d), key=lambda r: r["n"])
    return [r[what] for r in picked]


def crossovers(rows: list[dict], ns: list[int], d: int) -> dict:
    """For each pair: where CPU time, XLA FLOPs and temp memory cross, and theory's n."""
    out = {}
    for a, b in PAIRS:
        out[f"{a}/{b}"] = {"theory_flops": theory_crossover(a, b, d),
                           **{what: crossover(ns, series(rows, a, d, what), series(rows, b, d, what))
                              for what in ("cpu_ms", "flops", "temp_bytes")}}
    return out


def plot(results: dict, workdir: str) -> None:
    """Log-log CPU ms, FLOPs and temp bytes against n, one row of panels per d."""
    from matplotlib.figure import Figure

    from experiments import common

    ds, ns, rows = results["d"], results["n"], results["rows"]
    fig = Figure(figsize=(16, 4.3 * len(ds)))
    axes = fig.subplots(len(ds), 3, squeeze=False)
    for row, d in zip(axes, ds):
        for i, layer in enumerate(LAYERS):
            c = f"C{i}"
            row[0].loglog(ns, series(rows, layer, d, "cpu_ms"), "o-", color=c, label=layer)
            row[1].loglog(ns, series(rows, layer, d, "flops"), "o-", color=c, label=f"{layer}, XLA")
            row[1].loglog(ns, [3 * results["batch"] * theory_flops(layer, n, d) for n in ns], ":",
                          color=c, label=f"{layer}, 3× forward theory")
            row[2].loglog(ns, [max(v, 1) for v in series(rows, layer, d, "temp_bytes")], "o-", color=c,
                          label=layer)
        for ax in row:
            ax.axvline(d, color="k", lw=0.6, ls="--")
            ax.set_xlabel("sequence length n")
        row[0].set(ylabel="CPU ms (1 thread)", title=f"forward + backward time, d = {d}")
        row[1].set(ylabel="FLOPs", title=f"FLOPs, d = {d} (dashed: n = d)")
        row[2].set(ylabel="bytes", title=f"XLA temp memory, d = {d}")
        row[0].legend(fontsize=8)
        row[1].legend(fontsize=6, ncol=2)
    common.save_figure(fig, workdir, "scaling_cost.png")


def run(workdir: str, quick: bool = False, seed: int = 0) -> dict:
    """Measure every layer over n at each d (in a pinned child), find the crossings; writes
    results.json and scaling_cost.png. ``seed`` is unused: the inputs' values do not matter."""
    from experiments import common

    if quick:
        config = {"d": [32], "n": [16, 64, 256], "batch": 2, "repeats": 2}
    else:
        config = {"d": [128, 256], "n": [2 ** i for i in range(4, 12)], "batch": 4, "repeats": 5}
    start = time.perf_counter()
    measured = measure_pinned(config)
    rows = [r for r in measured["rows"] if "layer" in r]
    results = {**config, "xla_flags": ONE_THREAD, "pinned_to_one_core": True,
               "timer": "time.process_time, median of repeats",
               "rows": rows, "loop_body_flops": {r["d"]: {k: v for k, v in r.items() if k != "d"}
                                          for r in measured["rows"] if "layer" not in r},
               "crossovers": {d: crossovers(rows, config["n"], d) for d in config["d"]},
               "measure_wall_s": time.perf_counter() - start}
    plot(results, workdir)
    common.write_results(workdir, results)
    return results


if __name__ == "__main__":
    from experiments import common

    common.main(run, "scaling_cost")
