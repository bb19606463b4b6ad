"""One jitted optimizer update + apply_updates, jdl against its optax twin and PyTorch's
``fused=True`` and ``foreach=True`` updates (``benchmarks.optim_torch``).

For each optimizer: 10M float32 params held in 4 leaves and in 200 leaves (``quick``: 100k
params in 4 and 16 leaves, 3 repeats), the step ``(params, state) -> apply_updates(params, update(grads, state))``
jitted with params and state donated, A and B interleaved (alternating which goes first), each call timed to
``block_until_ready``, the median of the repeats reported in ms and as the ratio jdl/optax.
The JAX rows and the PyTorch rows run in separate processes (``benchmarks.worker``), as the
harness runs its implementations, and ``rounds`` > 1 alternates the two processes' order
round by round; ``threads=1`` pins XLA and PyTorch to one thread (the steady comparison on a
loaded machine: compare the CPU-ms columns). The JAX process also measures the copy ceiling
(x ← x + 1 on a donated buffer of the same size) that jdl's GB/s is compared with. With
``multi_output_fusion`` a second JAX process per round runs with XLA:CPU's multi-output fusion
on (``jdl.runtime.multi_output_fusion``; the flag is process-wide), where jdl's updates take
their one-pass form (``jdl.optim.onepass``): its figures are the ``mof_*`` columns.

    python -m benchmarks.optim [--quick] [--names=adam,sgd_momentum] [--rounds=3] [--threads=1]
        [--multi_output_fusion] [--out=runs/benchmarks/optim.json]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from benchmarks.timing import ONE_THREAD
from jdl import optim
from jdl.runtime import with_multi_output_fusion

# name -> lib -> optimizer; lib is jdl.optim or optax (both share the alias names and arguments)
OPTIMIZERS: dict[str, Callable] = {
    "sgd": lambda o: o.sgd(0.01),
    "sgd_momentum": lambda o: o.sgd(0.01, momentum=0.9),
    "sgd_nesterov": lambda o: o.sgd(0.01, momentum=0.9, nesterov=True),
    "momentum_ema": lambda o: (o.momentum_ema(0.01) if o is optim
                               else o.chain(o.ema(0.9, debias=False), o.scale_by_learning_rate(0.01))),
    "adagrad": lambda o: o.adagrad(0.01),
    "rmsprop": lambda o: o.rmsprop(0.01),
    "rmsprop_centered": lambda o: o.rmsprop(0.01, centered=True),
    "adam": lambda o: o.adam(1e-3),
    "adam_cosine": lambda o: o.adam(o.cosine_decay_schedule(1e-3, 1000)),
    "adamw": lambda o: o.adamw(1e-3),
    "adam_l2": lambda o: (o.adam_l2(1e-3) if o is optim else o.chain(o.add_decayed_weights(1e-4), o.adam(1e-3))),
    "clip_adam": lambda o: o.chain(o.clip_by_global_norm(1.0), o.adam(1e-3)),
    # jdl.optim.flatten (one vector per moment) against optax on the tree
    "adam_flat": lambda o: optim.flatten(o.adam(1e-3)) if o is optim else o.adam(1e-3),
    "sgd_momentum_flat": lambda o: optim.flatten(o.sgd(0.01, momentum=0.9)) if o is optim else o.sgd(0.01, momentum=0.9),
    # jdl.optim.fused_* (one native multi-tensor pass, flat moments; CPU) against optax on the tree
    "adam_fused": lambda o: optim.fused_adam(1e-3) if o is optim else o.adam(1e-3),
    "sgd_momentum_fused": lambda o: optim.fused_sgd(0.01, momentum=0.9) if o is optim else o.sgd(0.01, momentum=0.9),
}


def make_tree(n_params: int, n_leaves: int, seed: int) -> dict:
    """``n_leaves`` float32 vectors holding ``n_params`` numbers in all."""
    size = n_params // n_leaves
    keys = jax.random.split(jax.random.key(seed), n_leaves)
    return {f"{i:03d}": jax.random.normal(k, (size,), jnp.float32) for i, k in enumerate(keys)}


def make_step(opt, apply_updates):
    """The jitted, donating step (params, state, grads) -> (params, state); a fused optimizer's own
    ``step`` where it has one (``jdl.optim.FusedTransformation``)."""

    def step(params, state, grads):
        if isinstance(opt, optim.FusedTransformation):
            return opt.step(grads, state, params)
        updates, state = opt.update(grads, state, params)
        return apply_updates(params, updates), state

    return jax.jit(step, donate_argnums=(0, 1))


def time_pair(name: str, n_params: int, n_leaves: int, repeats: int) -> dict:
    """Median ms of one call of jdl's and optax's step, interleaved (jdl, optax, optax, jdl, ...)."""
    grads = make_tree(n_params, n_leaves, 1)
    runs, costs, cpu = {}, {}, {"jdl": [], "optax": []}
    for lib, apply in (("jdl", optim.apply_updates), ("optax", optax.apply_updates)):
        opt = OPTIMIZERS[name](optim if lib == "jdl" else optax)
        params = make_tree(n_params, n_leaves, 0)
        state = opt.init(params)
        step = make_step(opt, apply).lower(params, state, grads).compile()  # compiled once, run below
        costs[lib] = _bytes_accessed(step) + _fused_bytes(opt, params, state, grads)
        carry = jax.block_until_ready(step(params, state, grads))  # warm up
        runs[lib] = [step, carry, []]
    for r in range(repeats):
        for lib in (("jdl", "optax") if r % 2 == 0 else ("optax", "jdl")):  # no first-mover bias
            step, carry, times = runs[lib]
            start, start_cpu = time.perf_counter(), time.process_time()
            carry = jax.block_until_ready(step(*carry, grads))
            times.append((time.perf_counter() - start) * 1e3)
            cpu[lib].append((time.process_time() - start_cpu) * 1e3)
            runs[lib][1] = carry
    jdl_ms, optax_ms = (statistics.median(runs[lib][2]) for lib in ("jdl", "optax"))
    return {"name": name, "leaves": n_leaves, "jdl_ms": jdl_ms, "optax_ms": optax_ms,
            "ratio": jdl_ms / optax_ms, "jdl_bytes": costs["jdl"], "optax_bytes": costs["optax"],
            "jdl_cpu_ms": statistics.median(cpu["jdl"]), "optax_cpu_ms": statistics.median(cpu["optax"])}


def _bytes_accessed(step, *args) -> float:
    """XLA's count of the bytes the compiled step reads and writes (noise-free, unlike a clock):
    of ``step`` compiled, or of jitted ``step`` lowered for ``args``."""
    cost = (step.lower(*args).compile() if args else step).cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("bytes accessed", float("nan")))


def _fused_bytes(opt, params, state, grads) -> float:
    """The bytes a fused optimizer's native pass moves, which XLA's cost analysis does not see
    inside a custom call: g read, θ and the moments read and written once each (0 for others)."""
    if not isinstance(opt, optim.FusedTransformation):
        return 0.0
    size = lambda tree: sum(x.nbytes for x in jax.tree.leaves(tree) if x.ndim)  # noqa: E731  (not the count)
    return float(size(grads) + 2 * (size(params) + size(state)))


def copy_ceiling(n_params: int, repeats: int) -> dict:
    """GB/s of x ← x + 1 on a donated float32 buffer of n_params numbers (2·4·n bytes a call):
    by wall time from the fastest of ``repeats`` calls (the streaming ceiling), and by the median
    CPU time (the fastest CPU time of a call is below the clock's resolution now and then)."""
    add_one = jax.jit(lambda x: x + 1, donate_argnums=0)
    held = jax.block_until_ready(add_one(jnp.zeros((n_params,), jnp.float32)))
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        held = jax.block_until_ready(add_one(held))
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {"copy_gbs": 8 * n_params / min(wall) / 1e9, "copy_cpu_gbs": 8 * n_params / max(statistics.median(cpu), 1e-9) / 1e9}


def run_rows(names: list[str], n_params: int, leaves: list[int], repeats: int, threads: int | None = None) -> dict:
    """The JAX rows in this process: {'rows': [time_pair(...)], 'copy_gbs', 'copy_cpu_gbs'}
    (``threads`` is set by the parent through XLA_FLAGS; it is recorded here)."""
    rows = [time_pair(name, n_params, n_leaves, repeats) for n_leaves in leaves for name in names]
    return {"rows": rows, **copy_ceiling(n_params, repeats), "threads": threads,
            "backend": jax.default_backend(), "device": str(jax.devices()[0])}


def _spawn(kind: str, args: dict, fusion: bool = False) -> dict:
    """Run ``benchmarks.worker`` with {'kind': kind, 'args': args} in a fresh process
    (``fusion``: with XLA:CPU's multi-output fusion in its XLA_FLAGS)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.pathsep + env.get("PYTHONPATH", "")
    if args.get("threads") == 1:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + ONE_THREAD).strip()
    if fusion:
        env["XLA_FLAGS"] = with_multi_output_fusion(env.get("XLA_FLAGS", ""))
    proc = subprocess.run([sys.executable, "-m", "benchmarks.worker", json.dumps({"kind": kind, "args": args})],
                          capture_output=True, text=True, env=env, timeout=1800)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"{kind} worker exited with {proc.returncode}: {proc.stderr.strip()[-800:]}")


def run(quick: bool = False, names: list[str] | None = None, rounds: int = 1, threads: int | None = None,
        multi_output_fusion: bool = False) -> dict:
    """Time every optimizer (or ``names``) in JAX and, where PyTorch has it, PyTorch fused and
    foreach, ``rounds`` times in alternating processes; every figure is the median over rounds.

    Returns {"rows": [{name, leaves, jdl_ms, optax_ms, ratio, jdl_bytes, optax_bytes, *_cpu_ms,
    and for PyTorch's rows torch_fused_ms, torch_foreach_ms (+ _cpu_ms), vs_fused (jdl_ms /
    torch_fused_ms), vs_fused_cpu, jdl_gbs (XLA's bytes / jdl's time) and jdl_cpu_gbs; with
    ``multi_output_fusion`` the same jdl/optax keys prefixed ``mof_`` and mof_vs_fused_cpu}],
    "copy_gbs", "copy_cpu_gbs", "params", ...}.
    """
    n_params, repeats, leaves = (100_000, 3, [4, 16]) if quick else (10_000_000, 21, [4, 200])
    args = {"names": list(names or OPTIMIZERS), "n_params": n_params, "leaves": leaves, "repeats": repeats,
            "threads": threads}
    kinds = ["optim_jax", "optim_torch"] + (["optim_mof"] if multi_output_fusion else [])
    runs: dict[str, list] = {kind: [] for kind in kinds}
    for r in range(rounds):
        for kind in kinds[r % len(kinds):] + kinds[:r % len(kinds)]:  # rotate who goes first
            runs[kind].append(_spawn(kind.replace("optim_mof", "optim_jax"), args, fusion=kind == "optim_mof"))
    rows = [_merge(i, runs["optim_jax"], runs["optim_torch"], runs.get("optim_mof"))
            for i in range(len(runs["optim_jax"][0]["rows"]))]
    med = lambda key: statistics.median(run[key] for run in runs["optim_jax"])  # noqa: E731
    return {"rows": rows, "params": n_params, "repeats": repeats, "rounds": rounds, "threads": threads,
            "multi_output_fusion": multi_output_fusion, "copy_gbs": med("copy_gbs"), "copy_cpu_gbs": med("copy_cpu_gbs"),
            "backend": runs["optim_jax"][0]["backend"], "device": runs["optim_jax"][0]["device"]}


def _medians(runs: list[dict], i: int) -> dict:
    """Row i of the JAX runs, each float the median over the runs."""
    rounds = [run["rows"][i] for run in runs]
    return {k: (statistics.median(r[k] for r in rounds) if isinstance(v, float) else v) for k, v in rounds[0].items()}


def _merge(i: int, jax_runs: list[dict], torch_runs: list[dict], mof_runs: list[dict] | None = None) -> dict:
    """Row i of the JAX runs, medians over rounds, joined with PyTorch's rows of the same update
    and, where given, the runs with multi-output fusion (keys prefixed ``mof_``)."""
    row = _medians(jax_runs, i)
    row["ratio"] = row["jdl_ms"] / row["optax_ms"]
    if mof_runs:
        row.update({f"mof_{k}": v for k, v in _medians(mof_runs, i).items() if isinstance(v, float)})
    for variant in ("fused", "foreach"):
        found = [t for run in torch_runs for t in run["rows"]
                 if (t["name"], t["leaves"], t["variant"]) == (_family(row["name"]), row["leaves"], variant)]
        if found:
            row[f"torch_{variant}_ms"] = statistics.median(t["ms"] for t in found)
            row[f"torch_{variant}_cpu_ms"] = statistics.median(t["cpu_ms"] for t in found)
    if "torch_fused_ms" in row:
        row["vs_fused"] = row["jdl_ms"] / row["torch_fused_ms"]
        row["vs_fused_cpu"] = row["jdl_cpu_ms"] / row["torch_fused_cpu_ms"]
    for pre in ("", "mof_") if mof_runs else ("",):
        row[f"{pre}jdl_gbs"] = row[f"{pre}jdl_bytes"] / row[f"{pre}jdl_ms"] / 1e6
        row[f"{pre}jdl_cpu_gbs"] = row[f"{pre}jdl_bytes"] / max(row[f"{pre}jdl_cpu_ms"], 1e-9) / 1e6
        if "torch_fused_ms" in row and pre:
            row["mof_vs_fused_cpu"] = row["mof_jdl_cpu_ms"] / row["torch_fused_cpu_ms"]
    return row


def _family(name: str) -> str:
    """The PyTorch row a jdl variant is compared with: ``adam_flat``, ``adam_fused`` → ``adam``."""
    return name.removesuffix("_flat").removesuffix("_fused")


def table(result: dict) -> str:
    """The rows as a Markdown table, PyTorch's columns where the run has them (and the runs with
    multi-output fusion, ``mof``), and a closing note: jdl/PyTorch-fused of each such row and
    jdl's GB/s against the copy ceiling."""
    mof = bool(result.get("multi_output_fusion"))
    lines = [f"{result['params']:,} float32 params, median of {result.get('repeats', '?')} "
             f"interleaved calls on {result.get('device', '?')}", "",
             "| optimizer | leaves | jdl ms | optax ms | jdl/optax | bytes jdl/optax | PyTorch fused ms "
             "| PyTorch foreach ms | jdl/fused | jdl CPU ms | fused CPU ms | jdl/fused CPU |"
             + (" jdl+mof CPU ms | optax+mof CPU ms | jdl+mof B/param | jdl+mof/fused CPU |" if mof else ""),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" * 4 if mof else "")]
    f = lambda r, k: f"{r[k]:.3f}" if k in r else "—"  # noqa: E731
    for r in result["rows"]:
        line = (f"| {r['name']} | {r['leaves']} | {r['jdl_ms']:.3f} | {r['optax_ms']:.3f} | {r['ratio']:.3f} "
                f"| {r['jdl_bytes'] / r['optax_bytes']:.3f} | {f(r, 'torch_fused_ms')} | {f(r, 'torch_foreach_ms')} "
                f"| {f(r, 'vs_fused')} | {f(r, 'jdl_cpu_ms')} | {f(r, 'torch_fused_cpu_ms')} | {f(r, 'vs_fused_cpu')} |")
        if mof:
            line += (f" {f(r, 'mof_jdl_cpu_ms')} | {f(r, 'mof_optax_cpu_ms')} "
                     f"| {r['mof_jdl_bytes'] / result['params']:.1f} | {f(r, 'mof_vs_fused_cpu')} |")
        lines.append(line)
    if "copy_gbs" in result:
        lines += ["", f"Copy ceiling (x ← x + 1, donated, same size): {result['copy_gbs']:.1f} GB/s wall, "
                      f"{result['copy_cpu_gbs']:.1f} GB/s by CPU time."]
        for r in (r for r in result["rows"] if "vs_fused" in r):
            lines.append(f"- {r['name']}, {r['leaves']} leaves: jdl/PyTorch-fused {r['vs_fused']:.2f} (CPU "
                         f"{r['vs_fused_cpu']:.2f}); jdl moves {r['jdl_bytes'] / result['params']:.0f} B/param at "
                         f"{r['jdl_gbs']:.1f} GB/s wall, {r['jdl_cpu_gbs']:.1f} by CPU time")
            if mof:
                lines[-1] += (f"; with multi-output fusion CPU {r['mof_vs_fused_cpu']:.2f}, "
                              f"{r['mof_jdl_bytes'] / result['params']:.0f} B/param at {r['mof_jdl_cpu_gbs']:.1f} GB/s by CPU time")
    return "\n".join(lines)


def main() -> None:
    from absl import app, flags

    flags.DEFINE_bool("quick", False, "100k params in 4 and 16 leaves, 3 repeats, to check it runs.")
    flags.DEFINE_list("names", list(OPTIMIZERS), "Which optimizers (keys of OPTIMIZERS).")
    flags.DEFINE_integer("rounds", 1, "Alternating JAX/PyTorch process pairs; figures are medians over them.")
    flags.DEFINE_integer("threads", None, "1: XLA and PyTorch on one thread (compare the CPU columns).")
    flags.DEFINE_bool("multi_output_fusion", False, "Also run the JAX rows in a process with XLA:CPU's multi-output fusion.")
    flags.DEFINE_string("out", os.path.join("runs", "benchmarks", "optim.json"), "Where the JSON goes.")

    def _main(argv):
        del argv
        fl = flags.FLAGS
        result = run(fl.quick, fl.names, fl.rounds, fl.threads, fl.multi_output_fusion)
        os.makedirs(os.path.dirname(fl.out) or ".", exist_ok=True)
        with open(fl.out, "w") as f:
            json.dump(result, f, indent=1)
        print(table(result))

    app.run(_main)


if __name__ == "__main__":
    main()
