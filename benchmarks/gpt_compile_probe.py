"""Compile time against depth for the GPT workload's training step: ``jdl.models.gpt`` with
stack="loop" (a Python loop of N blocks) against stack="repeat" (one block under lax.scan),
the benchmark's shape (d 256, 4 heads, context 128, batch 16, vocab 65, AdamW) at N layers.

Per configuration, in its own process: trace+lower seconds, the first call's CPU seconds
(compile + one step), XLA's temporaries (MiB) and the CPU ms/step of a few steps after it
(results in benchmarks/NOTES.md, "GPT").

    python -m benchmarks.gpt_compile_probe [--layers=4,12] [--threads=1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

from benchmarks.lstm_variants import env


def measure_one(layers: int, stack: str, steps: int) -> dict:
    """Build the workload's jdl runner with ``layers`` blocks and time its first call and steps."""
    import dataclasses
    import time

    from benchmarks.workloads import gpt

    sizes = dataclasses.replace(gpt.Sizes(), layers=layers)
    options = gpt.configure(False, 0, tempfile.mkdtemp(prefix="gpt-compile-"), sizes)["options"]
    runner = gpt.build("jdl", options, stack=stack)
    first = runner.first_call()
    runner.sync(runner.step())
    start = time.process_time()
    for _ in range(steps):
        out = runner.step()
    runner.sync(out)
    return {**first, "step_cpu_ms": (time.process_time() - start) * 1e3 / steps}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpt_compile_probe", description=__doc__.split("\n")[0])
    p.add_argument("--layers", default="4,12")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        layers, stack = args.one.split(":")
        print("RESULT " + json.dumps(measure_one(int(layers), stack, args.steps)), flush=True)
        return {}
    results = {}
    for layers in (int(n) for n in args.layers.split(",")):
        for stack in ("loop", "repeat"):
            proc = subprocess.run([sys.executable, "-m", "benchmarks.gpt_compile_probe", "--one", f"{layers}:{stack}",
                                   "--steps", str(args.steps)], capture_output=True, text=True, env=env(args.threads))
            line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
            if not line:
                raise RuntimeError(f"{layers}:{stack} failed: {proc.stderr[-800:]}")
            r = results[f"{layers}:{stack}"] = json.loads(line[0][len("RESULT "):])
            print(f"layers={layers:2d} stack={stack:6s} trace+lower {r['trace_lower_s']:5.2f} s  first call CPU "
                  f"{r['first_call_cpu_s']:5.2f} s  step CPU {r['step_cpu_ms']:7.1f} ms", flush=True)
    return results


if __name__ == "__main__":
    main()
