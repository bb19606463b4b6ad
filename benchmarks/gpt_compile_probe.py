"""Compile time of jdl.models.gpt's gradient, stack="loop" against stack="repeat", at 2 and 12
layers: process CPU seconds of lower + compile (results in benchmarks/NOTES.md).

    PYTHONPATH=. python benchmarks/gpt_compile_probe.py
"""

import time

import jax
import jax.numpy as jnp

from jdl.losses import softmax_cross_entropy
from jdl.models.gpt import GPTConfig, gpt


def compile_seconds(num_layers: int, stack: str) -> float:
    ids = jnp.zeros((4, 64), jnp.int32)
    config = GPTConfig(vocab_size=100, context=64, num_layers=num_layers, d_model=128,
                       num_heads=4, stack=stack)
    model = gpt(config)
    params, _ = model.init(jax.random.key(0), ids)
    grad = jax.jit(jax.grad(lambda p: softmax_cross_entropy(model.apply(p, {}, ids)[0], ids)))
    start = time.process_time()
    grad.lower(params).compile()
    return time.process_time() - start


if __name__ == "__main__":
    for n in (2, 12):
        for stack in ("loop", "repeat"):
            print(f"layers={n:2d} stack={stack:6s} lower+compile CPU {compile_seconds(n, stack):5.2f} s",
                  flush=True)
