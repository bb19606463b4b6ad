"""Peak temporary memory of attention, forward + backward, against sequence length: the plain
softmax(QKᵀ/√d_k + M)V (which keeps the n × n weights), jax.nn.dot_product_attention, and jdl's
blockwise online-softmax kernel (O(n·block)). The figures in benchmarks/NOTES.md and
docs/attention.md.

    python -m benchmarks.attention_memory [--lengths=256,512,1024,2048,4096] [--time] [--out=DIR]

Causal self-attention, batch 1, 4 heads of d 64, float32. Memory is XLA's compiled
``memory_analysis().temp_size_in_bytes`` of the jitted gradient of sum(attention) in q, k and
v (the temporaries, not the inputs and outputs): compiling costs no run, so n = 4096 is cheap
to measure. ``--time`` also runs each and reports the median ms of 3 calls after a warm-up.
Writes attention_memory.json and attention_memory.png under ``--out`` when given.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

IMPLS = ("plain", "jax", "blockwise")


def measure(n: int, impl: str, heads: int, d: int, block: int, timed: bool) -> dict:
    """Temp MiB (and ms when ``timed``) of the jitted ∇ sum(attend(q, k, v, causal)) at length n."""
    import jax
    import jax.numpy as jnp

    from jdl.nn import attend

    def loss(q, k, v):
        return jnp.sum(attend(q, k, v, causal=True, impl=impl, block_size=block))

    grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
    x = jax.ShapeDtypeStruct((1, heads, n, d), jnp.float32)
    compiled = grad.lower(x, x, x).compile()
    row = {"n": n, "impl": impl, "temp_mib": compiled.memory_analysis().temp_size_in_bytes / 2 ** 20}
    if timed:
        q, k, v = (jax.random.normal(jax.random.key(i), x.shape) for i in range(3))
        jax.block_until_ready(compiled(q, k, v))
        times = []
        for _ in range(3):
            t = time.perf_counter()
            jax.block_until_ready(compiled(q, k, v))
            times.append(1e3 * (time.perf_counter() - t))
        row["ms"] = statistics.median(times)
    return row


def plot(rows: list[dict], path: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.8))
    ax = fig.add_subplot()
    for impl in IMPLS:
        pts = [(r["n"], r["temp_mib"]) for r in rows if r["impl"] == impl]
        ax.plot(*zip(*pts), marker="o", label=impl)
    ax.set(xscale="log", yscale="log", xlabel="sequence length n",
           ylabel="XLA temporaries, MiB (fwd + bwd)",
           title="Causal attention, 4 heads × d 64, float32")
    ax.set_xticks([r["n"] for r in rows if r["impl"] == IMPLS[0]],
                  labels=[str(r["n"]) for r in rows if r["impl"] == IMPLS[0]])
    ax.tick_params(axis="x", which="minor", bottom=False, labelbottom=False)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.attention_memory",
                                description=__doc__.split("\n")[0])
    p.add_argument("--lengths", default="256,512,1024,2048,4096")
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--block", type=int, default=128, help="keys per block of the blockwise kernel")
    p.add_argument("--time", action="store_true", help="also run each and report ms")
    p.add_argument("--out", default="", help="folder for attention_memory.json and .png")
    args = p.parse_args(argv)
    rows = [measure(int(n), impl, args.heads, args.d, args.block, args.time)
            for n in args.lengths.split(",") for impl in IMPLS]
    print(f"{'n':>6} " + " ".join(f"{impl + ' MiB':>14}" for impl in IMPLS)
          + ("".join(f"{impl + ' ms':>14}" for impl in IMPLS) if args.time else ""))
    for n in args.lengths.split(","):
        by = {r["impl"]: r for r in rows if r["n"] == int(n)}
        line = f"{n:>6} " + " ".join(f"{by[i]['temp_mib']:14.2f}" for i in IMPLS)
        print(line + ("".join(f"{by[i]['ms']:14.1f}" for i in IMPLS) if args.time else ""))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "attention_memory.json"), "w") as f:
            json.dump({"config": vars(args), "rows": rows}, f, indent=1)
        plot(rows, os.path.join(args.out, "attention_memory.png"))
    return rows


if __name__ == "__main__":
    main()
