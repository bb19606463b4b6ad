"""Which formulation of the GPT trains fastest on XLA:CPU? The GPT workload's whole AdamW step
(``benchmarks.workloads.gpt``) with jdl's model configured one lever at a time, beside the
workload's flax and PyTorch implementations.

A variant is ``jdl`` (the workload's jdl model: ``GPTConfig`` defaults over
``gpt.JDL_OPTIONS``), ``jdl:<field>=<value>[,...]`` (fields of ``GPTConfig``, e.g.
``jdl:attention=jax`` or ``jdl:ffn_impl=xla``), ``flax`` or ``torch``; a ``+keep`` suffix (``flax+keep``) runs
``jdl.runtime.keep_host_memory`` in that variant's process first.

``python -m benchmarks.gpt_variants [--variants=jdl,jdl:attention=jax,flax,torch] [--rounds=2]
[--threads=1]`` runs each variant in its own process (alternating over rounds), with XLA and
PyTorch pinned to ``--threads`` threads, and prints wall and CPU ms/step; the findings are in
benchmarks/NOTES.md ("GPT").
"""

from __future__ import annotations

import argparse
import json
import tempfile

from benchmarks.lstm_variants import alternate

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

    from benchmarks.timing import measure, pin_to_one_core

    if threads == 1:
        pin_to_one_core()  # XLA sizes its pool by the cores this process may use
    from benchmarks.workloads import gpt

    torch.set_num_threads(threads)
    if variant.endswith("+keep"):
        from jdl.runtime import keep_host_memory

        keep_host_memory()
        variant = variant[:-len("+keep")]
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
    results = alternate("benchmarks.gpt_variants", variants, options, args.rounds, args.threads,
                        ("--steps", args.steps))
    return results


if __name__ == "__main__":
    main()
