"""Which formulation of the GPT trains fastest on XLA:CPU? The GPT workload's whole AdamW step
(``benchmarks.workloads.gpt``) with jdl's model configured one lever at a time, beside the
workload's flax and PyTorch implementations.

A variant is ``jdl`` (the defaults of ``jdl.models.gpt``), ``jdl:<field>=<value>[,...]`` (fields
of ``GPTConfig``, e.g. ``jdl:attention=jax``), ``flax`` or ``torch``.

``python -m benchmarks.gpt_variants [--variants=jdl,jdl:attention=jax,flax,torch] [--rounds=2]
[--threads=1]`` runs each variant in its own process (alternating over rounds), with XLA and
PyTorch pinned to ``--threads`` threads, and prints wall and CPU ms/step; the findings are in
benchmarks/NOTES.md ("GPT").
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile

from benchmarks.lstm_variants import env

DEFAULT = ("jdl", "flax", "torch")


def parse_variant(variant: str) -> tuple[str, dict]:
    """'jdl:attention=jax,fused_qkv=True' → ('jdl', {'attention': 'jax', 'fused_qkv': True})."""
    impl, _, rest = variant.partition(":")
    kw = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        kw[key] = {"True": True, "False": False}.get(value, int(value) if value.isdigit() else value)
    return impl, kw


def measure_one(variant: str, options: dict, threads: int, steps: tuple[int, int, int]) -> dict:
    """Time one variant in this process: ``steps`` = (steps a block, blocks, warm-up steps)."""
    import torch

    from benchmarks.timing import measure
    from benchmarks.workloads import gpt

    torch.set_num_threads(threads)
    impl, kw = parse_variant(variant)
    return measure(gpt.build(impl, options, **kw), *steps)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpt_variants", description=__doc__.split("\n")[0])
    p.add_argument("--variants", default=",".join(DEFAULT), help="';'-separated variants")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="XLA and PyTorch threads (1: single-threaded)")
    p.add_argument("--steps", default="3,3,1", help="steps a block, blocks, warm-up steps")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    p.add_argument("--options", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    steps = tuple(int(n) for n in args.steps.split(","))
    if args.one:
        print("RESULT " + json.dumps(measure_one(args.one, json.loads(args.options), args.threads, steps)),
              flush=True)
        return {}
    from benchmarks.workloads import gpt

    options = gpt.configure(False, 0, tempfile.mkdtemp(prefix="gpt-variants-"))["options"]
    variants = [v for v in args.variants.split(";") if v]
    results = {v: [] for v in variants}
    for r in range(args.rounds):
        for v in variants[r % len(variants):] + variants[:r % len(variants)]:
            proc = subprocess.run([sys.executable, "-m", "benchmarks.gpt_variants", "--one", v, "--options",
                                   json.dumps(options), "--threads", str(args.threads), "--steps", args.steps],
                                  capture_output=True, text=True, env=env(args.threads))
            line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
            if not line:
                raise RuntimeError(f"variant {v} failed: {proc.stderr[-800:]}")
            results[v].append(json.loads(line[0][len("RESULT "):]))
            print(f"round {r + 1} {v:32s} wall {results[v][-1]['step_ms']:8.1f} ms  "
                  f"CPU {results[v][-1]['cpu_ms']:8.1f} ms  first call {results[v][-1]['first_call_s']:.1f} s",
                  flush=True)
    print(f"{'variant':32s} {'wall ms':>9s} {'CPU ms':>9s}  (medians over {args.rounds} rounds, {args.threads} thread(s))")
    for v, rs in results.items():
        print(f"{v:32s} {statistics.median(r['step_ms'] for r in rs):9.1f} "
              f"{statistics.median(r['cpu_ms'] for r in rs):9.1f}")
    return results


if __name__ == "__main__":
    main()
