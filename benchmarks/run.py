"""The benchmark harness: ``python -m benchmarks.run`` (``make bench``).

Times each workload (``benchmarks.workloads``) in jdl, flax.linen+optax and PyTorch eager from
the same initial weights and batch, and the extra benchmarks (``benchmarks.extras``: compile
time against depth, per-example gradients, optimizer updates). Method:

1. measure the machine's ceilings first (XLA float32 matmul GFLOP/s, in-place copy GB/s);
2. every (workload, implementation) runs in its own process (``--isolation=process``, the
   default) or in blocks of the parent (``block``); the order of the implementations rotates
   from round to round, over ``--rounds`` rounds (3 by default);
3. each process compiles and warms up first (compile time reported apart), then times blocks
   of steps with ``block_until_ready`` and donated state, and fails loudly if the step is
   traced again after warm-up;
4. report per implementation the median over rounds and the spread (max − min)/median, the
   ratio jdl/other of each round and its median (≤ 1: jdl as fast or faster) in wall time and
   in CPU time (steadier on a shared machine), GFLOP/s and the fraction of the matmul ceiling
   of the workload's dtype (MFU), and on a GPU of the maker's nominal peak too.

``--dtypes=float32,bfloat16`` adds each workload's mixed-precision variant (row ``<name>-bf16``:
float32 params, bfloat16 compute, in all three libraries); the default is float32 on a CPU and
both on a GPU (``--device=gpu``, which needs a CUDA build of jaxlib, ``pip install -e '.[gpu]'``,
and of torch for its column).

Output: a table on stdout, ``<out>/results.json`` and, with ``--docs``, ``docs/benchmarks.md``
with a bar chart of the ratios (``benchmarks.report``). ``--quick`` runs everything a few steps
to check that the harness works; its timings mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from benchmarks import report
from benchmarks.timing import summarize

IMPLS = ("jdl", "flax", "torch")


def parse(argv: list[str] | None) -> argparse.Namespace:
    from benchmarks.extras import EXTRAS
    from benchmarks.workloads import WORKLOADS

    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="a few steps of everything (checks the harness)")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated workloads")
    p.add_argument("--impls", default=",".join(IMPLS), help="comma-separated implementations")
    p.add_argument("--extras", default=",".join(EXTRAS), help="comma-separated extra benchmarks ('' for none)")
    p.add_argument("--rounds", type=int, default=None, help="rounds of alternation (3; quick 1)")
    p.add_argument("--isolation", choices=("process", "block"), default="process",
                   help="each measurement in its own process, or in blocks of this one")
    p.add_argument("--out", default=os.path.join("runs", "benchmarks"), help="where results.json goes")
    p.add_argument("--docs", default=None, help="write <docs>/benchmarks.md and the chart "
                   "(default: 'docs' for a full run, nothing with --quick)")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--dtypes", default=None, help="comma-separated compute dtypes of the workloads, "
                   "from float32, bfloat16 (default: float32 on cpu, both on gpu)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hugepages", action="store_true",
                   help="start every worker with GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (large "
                        "allocations as transparent huge pages; see benchmarks/NOTES.md)")
    p.add_argument("--keep-host-memory", default="jdl",
                   help="comma-separated implementations whose workers call jdl.runtime.keep_host_memory "
                        "on the workloads with large temporaries (synchronous dispatch, XLA's "
                        "per-step temporaries kept in the heap; '' for none)")
    args = p.parse_args(argv)
    from benchmarks.workloads.common import DTYPES

    if args.dtypes is None:
        args.dtypes = "float32" if args.device == "cpu" else ",".join(DTYPES)

    def names(value: str, kind: str, known) -> list[str]:
        chosen = [n for n in value.split(",") if n]
        for n in chosen:
            if n not in known:
                p.error(f"unknown {kind} {n!r}; expected some of {sorted(known)}")
        return chosen

    args.workloads = names(args.workloads, "workload", WORKLOADS)
    args.impls = names(args.impls, "implementation", IMPLS)
    args.extras = names(args.extras, "extra benchmark", EXTRAS)
    args.dtypes = names(args.dtypes, "dtype", DTYPES)
    args.keep_host_memory = names(args.keep_host_memory, "implementation", IMPLS)
    if args.isolation != "process":  # process-wide: in one process it would reach every implementation
        args.keep_host_memory = []
    if args.hugepages and args.isolation != "process":
        p.error("--hugepages sets the workers' environment, so it needs --isolation=process")
    args.rounds = args.rounds or (1 if args.quick else 3)
    if args.docs is None:
        args.docs = "" if args.quick else "docs"
    return args


HUGETLB = "glibc.malloc.hugetlb=1"


def _env(device: str, hugepages: bool = False) -> dict:
    """The workers' environment. ``hugepages``: glibc maps its large allocations as transparent
    huge pages, so a fresh multi-MB buffer faults once per 2 MiB instead of once per 4 KiB (the
    tunable is read when a process starts, hence only for workers)."""
    env = dict(os.environ)
    env.pop("JAX_COMPILATION_CACHE_DIR", None)  # compile times are measured: nothing from a cache
    if hugepages:
        env["GLIBC_TUNABLES"] = ":".join(t for t in (env.get("GLIBC_TUNABLES"), HUGETLB) if t)
    env["JAX_PLATFORMS"] = "cuda" if device == "gpu" else "cpu"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


def call(config: dict, isolation: str, device: str, hugepages: bool = False) -> dict:
    """Run one worker config here or in a fresh process; an error becomes {'error': ...}."""
    if isolation == "block":
        from benchmarks import worker

        try:
            return worker.measure(config)
        except Exception as err:  # noqa: BLE001 - reported in the results, the run goes on
            return {"error": f"{type(err).__name__}: {err}"}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.worker", json.dumps(config)],
                          capture_output=True, text=True, env=_env(device, hugepages), timeout=900)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return {"error": f"worker exited with {proc.returncode}: {proc.stderr.strip()[-800:]}"}


DTYPE_SUFFIX = {"float32": "", "bfloat16": "-bf16"}


def configure(names: list[str], quick: bool, seed: int, out: str, dtypes: list[str] = ("float32",)) -> dict:
    """Each (workload, dtype)'s spec and options, or {'skipped': reason} (printed), keyed by the
    row name: the workload's, with '-bf16' for the bfloat16 variant."""
    from benchmarks.workloads import WORKLOADS
    from benchmarks.workloads.common import Skip

    configs = {}
    for name in names:
        try:
            base = WORKLOADS[name].configure(quick, seed, out)
        except (Skip, ImportError) as err:
            print(f"skipping workload {name}: {err}", flush=True)
            base = {"skipped": str(err)}
        for dtype in dtypes:
            row = name + DTYPE_SUFFIX[dtype]
            if "skipped" in base:
                configs[row] = base
                continue
            spec = {**base["spec"], "workload": name, "dtype": dtype}
            if dtype != "float32":
                spec["description"] += (f"; mixed precision: {dtype} forward and backward, float32 "
                                        f"params and optimizer state")
            configs[row] = {"spec": spec, "options": {**base["options"], "dtype": dtype}}
    return configs


def aggregate(config: dict, runs: dict, ceilings: dict) -> dict:
    """Medians and spreads over rounds, per-round ratios jdl/other, GFLOP/s and MFU (against the
    measured matmul ceiling of the workload's dtype, and the nominal peak where known)."""
    spec = config["spec"]
    dtype = spec.get("dtype", "float32")
    ceiling = ceilings.get("matmul_gflops_by_dtype", {}).get(dtype, ceilings["matmul_gflops"])
    peak = (ceilings.get("nominal_peak_tflops") or {}).get(dtype)
    impls = {}
    for impl, rounds in runs.items():
        good = [r for r in rounds if "error" not in r and "skipped" not in r]
        if not good:
            impls[impl] = ({"skipped": rounds[0]["skipped"]} if rounds and "skipped" in rounds[0]
                           else {"error": rounds[0]["error"] if rounds else "not run"})
            continue
        step = summarize([r["step_ms"] for r in good])
        gflops = spec["flops"] / (step["median"] / 1e3) / 1e9
        impls[impl] = {"step_ms": step, "cpu_ms": summarize([r["cpu_ms"] for r in good]),
                       "first_call_s": summarize([r["first_call_s"] for r in good]),
                       "trace_lower_s": summarize([r["trace_lower_s"] for r in good]),
                       "gflops": gflops, "mfu": gflops / ceiling, "rounds": rounds}
        if peak:
            impls[impl]["mfu_nominal"] = gflops / (peak * 1e3)
    ratios = {}
    for impl in impls:
        if impl == "jdl" or "step_ms" not in impls[impl] or "step_ms" not in impls.get("jdl", {}):
            continue
        for key, suffix in (("step_ms", ""), ("cpu_ms", " CPU")):
            per_round = [a[key] / b[key] for a, b in zip(runs["jdl"], runs[impl]) if key in a and key in b]
            if per_round:
                ratios[f"jdl/{impl}{suffix}"] = summarize(per_round)
    floor_ms = spec["min_bytes"] / (ceilings["copy_gbs"] * 1e9) * 1e3
    return {"spec": spec, "options": config["options"], "impls": impls, "ratios": ratios,
            "memory_floor_ms": floor_ms, "compute_floor_ms": spec["flops"] / ceiling / 1e6}


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmarks the flags ask for; return (and write) the results."""
    args = parse(argv)
    started = time.time()
    os.makedirs(args.out, exist_ok=True)
    machine = call({"kind": "machine", "quick": args.quick}, args.isolation, args.device, args.hugepages)
    if "error" in machine:
        hint = (" (--device=gpu needs an NVIDIA GPU and a CUDA build of jaxlib: pip install -e '.[gpu]')"
                if args.device == "gpu" else "")
        raise RuntimeError(f"measuring the machine failed: {machine['error']}{hint}")
    print(f"ceilings: matmul {machine['ceilings']['matmul_gflops']:.0f} GFLOP/s float32, "
          f"{machine['ceilings']['matmul_gflops_by_dtype']['bfloat16']:.0f} bfloat16, "
          f"copy {machine['ceilings']['copy_gbs']:.1f} GB/s", flush=True)
    configs = configure(args.workloads, args.quick, args.seed, args.out, args.dtypes)
    steps = (2, 2, 1) if args.quick else (20, 5, 5)  # steps a block, blocks, warm-up steps
    runs = {w: {i: [] for i in args.impls} for w, c in configs.items() if "skipped" not in c}
    for r in range(args.rounds):
        order = args.impls[r % len(args.impls):] + args.impls[:r % len(args.impls)]
        for w in runs:
            for impl in order:
                result = call({"kind": "workload", "workload": configs[w]["spec"]["workload"], "impl": impl,
                               "options": configs[w]["options"], "n_steps": steps[0], "n_blocks": steps[1],
                               "n_warmup": steps[2], "device": args.device,
                               "keep_host_memory": impl in args.keep_host_memory}, args.isolation, args.device,
                              args.hugepages)
                print(f"round {r + 1}/{args.rounds} {w:11s} {impl:6s} " + (
                    f"{result['step_ms']:8.3f} ms/step, first call {result['first_call_s']:.2f} s"
                    if "step_ms" in result else f"ERROR {result['error']}" if "error" in result
                    else f"skipped: {result['skipped']}"), flush=True)
                runs[w][impl].append(result)
    results = {
        "command": "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        "quick": args.quick, "rounds": args.rounds, "isolation": args.isolation, "device": args.device,
        "dtypes": args.dtypes,
        "malloc_hugepages": args.hugepages, "keep_host_memory": args.keep_host_memory,
        "steps_per_block": steps[0], "blocks": steps[1],
        "machine": machine["info"], "ceilings": machine["ceilings"],
        "workloads": {w: (aggregate(c, runs[w], machine["ceilings"]) if w in runs else c)
                      for w, c in configs.items()},
        "extras": {},
    }
    for e in args.extras:
        print(f"extra benchmark {e} ...", flush=True)
        results["extras"][e] = call({"kind": "extra", "extra": e, "quick": args.quick, "seed": args.seed},
                                    args.isolation, args.device, args.hugepages)
    results["wall_s"] = time.time() - started
    path = os.path.join(args.out, "results.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    print(report.table(results))
    print(f"wrote {path}")
    if args.docs:
        print(f"wrote {report.write_docs(results, args.docs)}")
    return results


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as err:  # the machine could not be measured: a message, not a traceback
        sys.exit(f"python -m benchmarks.run: {err}")
