"""Adam steps of a deep residual stack built five ways, timed in ONE process in interleaved
blocks: the Python loop (``serial``), ``repeat`` (scan), ``repeat(impl='custom_vjp')`` (the
split pullback) and the custom VJP's other variants, the whole pullback in the batched pass or
only the layer inputs saved (``jdl.kernels.repeat.stack_custom_vjp(save='residuals' | 'inputs')``).

    python -m benchmarks.repeat_vjp [--layers=12,24] [--rounds=7] [--steps=10] [--keep_host_memory]
        [--optimizer=adam|fused_adam] [--out=FILE.json]

Blocks x + Dense(d)(tanh(Dense(2d)(x))), batch 128, d 256, Adam lr 1e-3, jitted steps donating
params and optimizer state (as benchmarks/repeat_probe.py). Compile time: wall and process-CPU
seconds of lower+compile. Step: each round runs every configuration for ``--steps`` steps in
turn (blocks, not call by call: XLA's threads spin after a call) and keeps the block's median;
the figure is the median over rounds, and the ratio to the loop is taken per round, then its
median; the same for the process CPU time per step (less moved by other processes' load).
``--options='{"xla_cpu_...": value}'`` compiles extra rows of the scan kinds with XLA compiler
options (per compile, so with and without run side by side in one process). Process-wide XLA_FLAGS (while-loop flags) are tried by setting them before the run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import time

KINDS = ("loop", "repeat", "custom_vjp", "custom_vjp_residuals", "custom_vjp_inputs")
# also accepted: "repeat_unrollN" (the scan running N layers per iteration)


def build_step(kind: str, layers: int, d: int, x, y, optimizer: str = "adam"):
    """(jitted step, initial carry) for one configuration; ``optimizer`` 'adam' (the XLA update)
    or 'fused_adam' (``jdl.optim.fused_adam``: one native pass, whatever the leaves' shapes)."""
    import jax
    import jax.numpy as jnp

    import jdl
    from jdl.kernels.repeat import stack_custom_vjp
    from jdl.losses import softmax_cross_entropy
    from jdl.optim.base import apply_updates

    block = jdl.nn.residual(jdl.nn.serial(jdl.nn.Dense(2 * d), jnp.tanh, jdl.nn.Dense(d)))
    if kind == "loop":
        model = jdl.nn.serial(*[block] * layers)
    else:
        unroll = int(kind.split("unroll")[1]) if "unroll" in kind else 1
        model = jdl.nn.repeat(block, layers, unroll, "custom_vjp" if kind == "custom_vjp" else "scan")
    params, state = model.init(jax.random.key(0), x)
    if kind in ("custom_vjp_inputs", "custom_vjp_residuals"):
        f = lambda p, h, k: block.apply(p, {}, h)[0]
        forward = lambda p: stack_custom_vjp(f, p, x, None, save=kind.split("_")[-1])
    else:
        forward = lambda p: model.apply(p, state, x)[0]
    opt = getattr(jdl.optim, optimizer)(1e-3)

    def step(params, opt_state, x, y):
        value, grads = jax.value_and_grad(lambda p: softmax_cross_entropy(forward(p), y))(params)
        if isinstance(opt, jdl.optim.FusedTransformation):
            return *opt.step(grads, opt_state, params), value
        updates, opt_state = opt.update(grads, opt_state, params)
        return apply_updates(params, updates), opt_state, value

    return jax.jit(step, donate_argnums=(0, 1)), (params, opt.init(params))


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m benchmarks.repeat_vjp", description=__doc__.split("\n")[0])
    p.add_argument("--layers", default="12,24")
    p.add_argument("--kinds", default=",".join(KINDS))
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--optimizer", default="adam", choices=("adam", "fused_adam"))
    p.add_argument("--options", default="", help="JSON dict of XLA compiler options: adds "
                   "'<kind>+opts' rows compiled with them (same process, same inputs)")
    p.add_argument("--keep_host_memory", action="store_true", help="jdl.runtime.keep_host_memory() "
                   "first: synchronous dispatch and glibc's heap kept, so no temporaries are re-mapped")
    p.add_argument("--out", default="")
    args = p.parse_args(argv)
    if args.keep_host_memory:
        from jdl.runtime import keep_host_memory

        print(keep_host_memory())

    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((128, args.width), dtype=np.float32))
    y = jnp.asarray(rng.integers(0, args.width, 128).astype(np.int32))
    options = json.loads(args.options) if args.options else {}
    kinds = args.kinds.split(",")
    unknown = [k for k in kinds if k not in KINDS and not re.fullmatch(r"repeat_unroll\d+", k)]
    if unknown:
        p.error(f"--kinds: unknown {unknown}; choose from {KINDS} or repeat_unrollN")
    kinds += [f"{k}+opts" for k in kinds if k != "loop"] if options else []
    configs = [(k, int(n)) for n in args.layers.split(",") for k in kinds]
    steps, carries, compile_s = {}, {}, {}
    for c in configs:
        fn, carry = build_step(c[0].removesuffix("+opts"), c[1], args.width, x, y, args.optimizer)
        wall, cpu = time.perf_counter(), time.process_time()
        steps[c] = fn.lower(*carry, x, y).compile(options if c[0].endswith("+opts") else None)
        compile_s[c] = (time.perf_counter() - wall, time.process_time() - cpu)
        *carries[c], value = steps[c](*carry, x, y)
        value.block_until_ready()
    rounds, cpu_rounds = {c: [] for c in configs}, {c: [] for c in configs}
    for _ in range(args.rounds):
        for c in configs:
            times, cpu = [], time.process_time()
            for _ in range(args.steps):
                start = time.perf_counter()
                *carries[c], value = steps[c](*carries[c], x, y)
                value.block_until_ready()
                times.append((time.perf_counter() - start) * 1e3)
            rounds[c].append(statistics.median(times))
            cpu_rounds[c].append((time.process_time() - cpu) * 1e3 / args.steps)
    rows = []
    for kind, n in configs:
        ratio = [a / b for a, b in zip(rounds[(kind, n)], rounds[("loop", n)])] if ("loop", n) in rounds else []
        cpu_ratio = [a / b for a, b in zip(cpu_rounds[(kind, n)], cpu_rounds[("loop", n)])] if ratio else []
        rows.append({"layers": n, "kind": kind, "step_ms": statistics.median(rounds[(kind, n)]),
                     "step_cpu_ms": statistics.median(cpu_rounds[(kind, n)]),
                     "cpu_ratio_to_loop": statistics.median(cpu_ratio) if cpu_ratio else None,
                     "ratio_to_loop": statistics.median(ratio) if ratio else None,
                     "ratio_range": [min(ratio), max(ratio)] if ratio else None,
                     "compile_wall_s": compile_s[(kind, n)][0], "compile_cpu_s": compile_s[(kind, n)][1]})
        r = rows[-1]
        print(f"{n:3d} {kind:18s} step {r['step_ms']:7.2f} ms  ratio {r['ratio_to_loop'] or 0:.3f} "
              f"[{(r['ratio_range'] or [0, 0])[0]:.2f}–{(r['ratio_range'] or [0, 0])[1]:.2f}]  "
              f"CPU {r['step_cpu_ms']:7.2f} ms ratio {r['cpu_ratio_to_loop'] or 0:.3f}  "
              f"compile {r['compile_wall_s']:.2f} s wall / {r['compile_cpu_s']:.2f} s CPU")
    result = {"rows": rows, "xla_flags": os.environ.get("XLA_FLAGS", ""), "load": os.getloadavg(),
              **vars(args)}
    print(f"options={options} XLA_FLAGS={result['xla_flags']!r} load average {result['load']}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=1)
    return result


if __name__ == "__main__":
    main()
