"""Which formulation of the char-LSTM trains fastest on XLA:CPU? The benchmark's whole training
step (``benchmarks.workloads.char_lstm``: embedding, LSTM, Dense head, Adam) with the LSTM written
several ways, one lever at a time:

- ``gates4``: the plain scan with x_t W_x inside the loop and each gate its own pair of matmuls
  (eight (·, H) matmuls a step, as flax's ``LSTMCell`` does);
- ``scan``: the same with the four gates as one (·, 4H) matmul each for x_t and h_{t−1}
  (``lstm_sequence(impl='scan')``);
- ``hoisted``: the input projection for all T steps as one (B·T, C)·(C, 4H) matmul before the
  loop, autodiff of the scan for the gradients (``impl='hoisted'``);
- ``fused``: hoisted, with the hand-written BPTT whose weight gradients are single matmuls after
  the loop (``impl='fused'``);
- ``table``: ``fused`` with the input projection gathered from the (V, 4H) table E·W_x + b
  (``embedded_lstm_sequence``);
- ``native``: ``table`` with its two scans as the native C++ kernel (``impl='native'``, the
  workload's jdl model on a CPU that can build it);
- ``<variant>/u<k>``: the same with ``unroll=k``;
- ``flax`` and ``torch``: the workload's other two implementations;
- suffixes, any number, set up the variant's process before its first JAX call: ``+keep``
  (``table/u2+keep``) runs ``jdl.runtime.keep_host_memory`` (synchronous dispatch, XLA's per-step
  temporaries kept in the heap); ``+small`` raises XLA:CPU's small-while-loop threshold
  (``xla_cpu_small_while_loop_byte_threshold``, default 1 KiB) so that the scans' while loops are
  compiled as one function each instead of a sequence of runtime thunks (XLA hoists only loops
  without custom fusions, so it needs ``+noynn``: no YNNPACK dot fusions); ``+dp2`` makes two
  host devices and runs the same step data-parallel over them (``jdl.distributed``: each
  device the recurrence of 16 of the 32 sequences, the gradients all-reduced) — jdl only; ``+t1``
  runs the variant on one thread (XLA without Eigen threads, PyTorch ``set_num_threads(1)``)
  whatever ``--threads`` says, to set one implementation's single-threaded step beside the
  others' multi-threaded ones in one interleaved run.

``python -m benchmarks.lstm_variants [--variants=scan,fused/u4,flax] [--rounds=2] [--threads=1]``
runs each variant in its own process (alternating over rounds), with XLA and PyTorch pinned to
``--threads`` threads, and prints wall and CPU ms/step; the findings are in benchmarks/NOTES.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile

from benchmarks.timing import ONE_THREAD, pin_to_one_core

DEFAULT = ("gates4", "scan", "hoisted", "fused", "hoisted/u4", "fused/u2", "fused/u4", "fused/u8", "table", "table/u4",
           "flax", "torch")


def gates4_sequence(params, x, unroll: int = 1):
    """The LSTM with every gate its own matmuls, x_t W_x^k + h W_h^k + b^k for k in i, f, g, o."""
    import jax
    import jax.numpy as jnp

    h_size = params["w_h"].shape[0]
    cols = [slice(k * h_size, (k + 1) * h_size) for k in range(4)]
    w_x = [params["w_x"][:, s] for s in cols]
    w_h = [params["w_h"][:, s] for s in cols]
    b = [params["b"][s][None, :] for s in cols]

    def step(carry, x_t):
        h, c = carry
        z = [x_t @ w_x[k] + h @ w_h[k] + b[k] for k in range(4)]  # 4 × (B, H)
        i, f, g, o = jax.nn.sigmoid(z[0]), jax.nn.sigmoid(z[1]), jnp.tanh(z[2]), jax.nn.sigmoid(z[3])
        c = f * c + i * g
        h = o * jnp.tanh(c)
        return (h, c), h

    zeros = jnp.zeros((x.shape[0], h_size), x.dtype)
    (h, c), hs = jax.lax.scan(step, (zeros, zeros), jnp.swapaxes(x, 0, 1), unroll=unroll)
    return jnp.swapaxes(hs, 0, 1), (h, c)


SMALL_WHILE = "--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=1000000000"
NO_YNN = "--xla_cpu_experimental_ynn_fusion_type="


def set_up(variant: str) -> tuple[str, int]:
    """Apply the variant's suffixes to this process (before JAX's backend starts); return the
    variant without them and the number of devices to run it on (1, or 2 with ``+dp2``)."""
    devices = 1
    while "+" in variant:
        variant, _, suffix = variant.rpartition("+")
        if suffix == "keep":
            from jdl.runtime import keep_host_memory

            keep_host_memory()
        elif suffix == "small":
            os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + SMALL_WHILE).strip()
        elif suffix == "noynn":
            os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + NO_YNN).strip()
        elif suffix == "t1":
            import torch

            torch.set_num_threads(1)
            os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + ONE_THREAD).strip()
            pin_to_one_core()
        elif suffix == "dp2":
            devices = 2
            os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                                       + " --xla_force_host_platform_device_count=2").strip()
        else:
            raise ValueError(f"lstm_variants: unknown suffix +{suffix} (known: +keep, +small, +noynn, +dp2, +t1)")
    return variant, devices


def runner(variant: str, options: dict, devices: int = 1):
    """The Runner of one variant ('fused/u4', 'gates4', 'flax', 'torch', ...), on ``devices``
    host devices (data-parallel; jdl variants only)."""
    from benchmarks.workloads import char_lstm, common
    from jdl.distributed import data_mesh
    from jdl.kernels.lstm import lstm_sequence

    if variant in ("flax", "torch"):
        if devices != 1:
            raise ValueError(f"lstm_variants: +dp2 is for jdl variants, not {variant}")
        return char_lstm.build(variant, options)
    name, _, unroll = variant.partition("/u")
    unroll = int(unroll or 1)
    impl = "fused"
    if name in ("table", "native"):  # embedded_lstm_sequence: the workload's jdl model
        sequence, impl = None, "native" if name == "native" else "fused"
    elif name == "gates4":
        sequence = functools.partial(gates4_sequence, unroll=unroll)
    else:
        sequence = functools.partial(lstm_sequence, impl=name, unroll=unroll)
    x, y = char_lstm.data(options["seed"])
    return common.jdl_runner(char_lstm.jdl_model(sequence, unroll, impl), common.load_layers(options["weights"]),
                             options["optimizer"], x, y, load=char_lstm.load_jdl,
                             mesh=None if devices == 1 else data_mesh(devices))


def measure_one(variant: str, options: dict, threads: int) -> dict:
    """Time one variant in this process: 5 blocks of 10 steps after 3 warm-up steps."""
    import torch

    from benchmarks.timing import measure

    torch.set_num_threads(threads)
    if threads == 1:
        pin_to_one_core()  # XLA sizes its pool by the cores this process may use
    variant, devices = set_up(variant)  # before the variant's first JAX call starts the backend
    return measure(runner(variant, options, devices), 10, 5, 3)


def env(threads: int) -> dict:
    """The children's environment (1 thread: no Eigen threads; the child then pins itself to one
    core in ``measure_one``, which is what limits XLA's pool)."""
    e = dict(os.environ)
    flags = ONE_THREAD if threads == 1 else ""
    e["XLA_FLAGS"] = (e.get("XLA_FLAGS", "") + " " + flags).strip()
    e["JAX_PLATFORMS"] = "cpu"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    e["PYTHONPATH"] = root + os.pathsep + e.get("PYTHONPATH", "")
    return e


def alternate(module: str, variants: list[str], options: dict, rounds: int, threads: int,
              extra: tuple[str, ...] = ()) -> dict:
    """Run ``python -m <module> --one <variant>`` per variant and round (the order rotating each
    round), print each result and the medians; return {variant: [result per round]}."""
    results = {v: [] for v in variants}
    for r in range(rounds):
        for v in variants[r % len(variants):] + variants[:r % len(variants)]:
            proc = subprocess.run([sys.executable, "-m", module, "--one", v, "--options", json.dumps(options),
                                   "--threads", str(threads), *extra], capture_output=True, text=True, env=env(threads))
            line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
            if not line:
                raise RuntimeError(f"variant {v} failed: {proc.stderr[-800:]}")
            results[v].append(json.loads(line[0][len("RESULT "):]))
            print(f"round {r + 1} {v:32s} wall {results[v][-1]['step_ms']:8.2f} ms  "
                  f"CPU {results[v][-1]['cpu_ms']:8.2f} ms", flush=True)
    print(f"{'variant':32s} {'wall ms':>9s} {'CPU ms':>9s}  (medians over {rounds} rounds, {threads} thread(s))")
    for v, rs in results.items():
        print(f"{v:32s} {statistics.median(r['step_ms'] for r in rs):9.2f} "
              f"{statistics.median(r['cpu_ms'] for r in rs):9.2f}")
    return results


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m benchmarks.lstm_variants", description=__doc__.split("\n")[0])
    p.add_argument("--variants", default=",".join(DEFAULT))
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="XLA and PyTorch threads (1: single-threaded)")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    p.add_argument("--options", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        print("RESULT " + json.dumps(measure_one(args.one, json.loads(args.options), args.threads)), flush=True)
        return {}
    from benchmarks.workloads import char_lstm

    options = char_lstm.configure(False, 0, tempfile.mkdtemp(prefix="lstm-variants-"))["options"]
    variants = [v for v in args.variants.split(",") if v]
    results = alternate("benchmarks.lstm_variants", variants, options, args.rounds, args.threads)
    return results


if __name__ == "__main__":
    main()
