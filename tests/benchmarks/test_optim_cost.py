"""Without a clock: each jdl optimizer step compiles to a program that moves exactly as many bytes
as its optax twin's, up to a few scalars (XLA's cost analysis: an extra pass over one 1000-element
leaf would cost 4000 bytes), and the benchmark's table reads its rows."""

import optax
import pytest

from benchmarks import optim as bench
from jdl import optim


@pytest.mark.parametrize("name", sorted(bench.OPTIMIZERS))
def test_jdl_step_moves_the_same_bytes_as_optax(name):
    params, grads = bench.make_tree(3_000, 3, 0), bench.make_tree(3_000, 3, 1)
    costs = []
    for lib, apply in ((optim, optim.apply_updates), (optax, optax.apply_updates)):
        opt = bench.OPTIMIZERS[name](lib)
        costs.append(bench._bytes_accessed(bench.make_step(opt, apply), params, opt.init(params), grads))
    assert costs[1] > 0 and abs(costs[0] - costs[1]) <= 64, costs


def test_table_lists_every_row():
    row = {"name": "adam", "leaves": 4, "jdl_ms": 1.0, "optax_ms": 2.0, "ratio": 0.5, "jdl_bytes": 3.0,
           "optax_bytes": 3.0}
    text = bench.table({"rows": [row], "params": 100, "repeats": 3, "device": "cpu"})
    assert "| adam | 4 | 1.000 | 2.000 | 0.500 | 1.000 |" in text and "100 float32 params" in text
