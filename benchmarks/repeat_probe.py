"""One Adam step of a deep residual stack, built as a Python loop or with ``jdl.nn.repeat``, with
the size of XLA's temporaries: the probe behind benchmarks/NOTES.md's "Two more attempts at
``repeat``".

    python -m benchmarks.repeat_probe --kind=repeat --layers=24 [--unroll=4] [--keep_grads]

Blocks x + Dense(d)(tanh(Dense(2d)(x))), batch 128, d 256, Adam lr 1e-3; the jitted step
donates params, optimizer state and a gradient buffer. ``--keep_grads`` returns ∇θ as its own
output (written into that buffer), so the stacked weight gradients leave XLA's one combined
temporary allocation. Prints the temporaries (MiB) and the median ms/step of ``--steps``
steps after 3 warm-up steps; run one configuration per process.
"""

from __future__ import annotations

import argparse
import statistics
import time


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m benchmarks.repeat_probe", description=__doc__.split("\n")[0])
    p.add_argument("--kind", choices=("loop", "repeat"), default="repeat")
    p.add_argument("--layers", type=int, default=24)
    p.add_argument("--unroll", type=int, default=1, help="repeat's lax.scan unroll")
    p.add_argument("--keep_grads", action="store_true", help="return the gradient as its own output")
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--steps", type=int, default=30)
    args = p.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import numpy as np

    import jdl
    from jdl.losses import softmax_cross_entropy
    from jdl.optim.base import apply_updates

    batch, d = 128, args.width
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((batch, d), dtype=np.float32))
    y = jnp.asarray(rng.integers(0, d, batch).astype(np.int32))
    block = jdl.nn.residual(jdl.nn.serial(jdl.nn.Dense(2 * d), jnp.tanh, jdl.nn.Dense(d)))
    model = (jdl.nn.serial(*[block] * args.layers) if args.kind == "loop"
             else jdl.nn.repeat(block, args.layers, unroll=args.unroll))
    params, state = model.init(jax.random.key(0), x)
    opt = jdl.optim.adam(1e-3)

    def step(params, opt_state, grad_buffer, x, y):
        def loss(p):
            return softmax_cross_entropy(model.apply(p, state, x)[0], y)

        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return apply_updates(params, updates), opt_state, grads if args.keep_grads else grad_buffer, value

    jitted = jax.jit(step, donate_argnums=(0, 1, 2))
    carry = (params, opt.init(params), jax.tree.map(jnp.zeros_like, params))
    temp_mib = jitted.lower(*carry, x, y).compile().memory_analysis().temp_size_in_bytes / 2 ** 20
    for _ in range(3):
        *carry, value = jitted(*carry, x, y)
    value.block_until_ready()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        *carry, value = jitted(*carry, x, y)
        value.block_until_ready()
        times.append((time.perf_counter() - start) * 1e3)
    result = {**vars(args), "temp_mib": temp_mib, "step_ms": statistics.median(times)}
    print(f"{args.kind} layers={args.layers} unroll={args.unroll} keep_grads={args.keep_grads}: "
          f"temporaries {temp_mib:.1f} MiB, {result['step_ms']:.2f} ms/step")
    return result


if __name__ == "__main__":
    main()
