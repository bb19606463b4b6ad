"""Without a clock: each jdl optimizer step compiles to a program that moves exactly as many bytes
as its optax twin's, up to a few scalars (XLA's cost analysis: an extra pass over one 1000-element
leaf would cost 4000 bytes), and the benchmark's table reads its rows. The ``*_flat`` rows
(``jdl.optim.flatten`` against optax on the tree) move more: their concatenation and slicing
are the cost that benchmarks/NOTES.md measures. The ``*_fused`` rows (one native pass) move the
floor, 28 B/param for Adam and 20 for SGD-momentum, against optax's 40 and 24."""

import optax
import pytest

from benchmarks import optim as bench
from jdl import optim


@pytest.mark.parametrize("name", sorted(n for n in bench.OPTIMIZERS if not n.endswith(("_flat", "_fused"))))
def test_jdl_step_moves_the_same_bytes_as_optax(name):
    params, grads = bench.make_tree(3_000, 3, 0), bench.make_tree(3_000, 3, 1)
    costs = []
    for lib, apply in ((optim, optim.apply_updates), (optax, optax.apply_updates)):
        opt = bench.OPTIMIZERS[name](lib)
        costs.append(bench._bytes_accessed(bench.make_step(opt, apply), params, opt.init(params), grads))
    assert costs[1] > 0 and abs(costs[0] - costs[1]) <= 64, costs


@pytest.mark.parametrize("name, floor, optax_bytes", [("adam_fused", 28, 40), ("sgd_momentum_fused", 20, 24)])
def test_fused_rows_move_the_floor(name, floor, optax_bytes):
    """Read g, θ, moments once, write θ, moments once; XLA's count (scalars only for the custom
    call) plus the call's operands and results, against optax's 3-loop (2-loop) program."""
    params, grads = bench.make_tree(3_000, 3, 0), bench.make_tree(3_000, 3, 1)
    costs = {}
    for lib, apply in ((optim, optim.apply_updates), (optax, optax.apply_updates)):
        opt = bench.OPTIMIZERS[name](lib)
        state = opt.init(params)
        costs[lib] = (bench._bytes_accessed(bench.make_step(opt, apply), params, state, grads)
                      + bench._fused_bytes(opt, params, state, grads))
    assert abs(costs[optim] - floor * 3_000) <= 128 and abs(costs[optax] - optax_bytes * 3_000) <= 128, costs  # + scalars


def test_table_lists_every_row():
    row = {"name": "adam", "leaves": 4, "jdl_ms": 1.0, "optax_ms": 2.0, "ratio": 0.5, "jdl_bytes": 3.0,
           "optax_bytes": 3.0}
    text = bench.table({"rows": [row], "params": 100, "repeats": 3, "device": "cpu"})
    assert "| adam | 4 | 1.000 | 2.000 | 0.500 | 1.000 |" in text and "100 float32 params" in text


def test_table_closing_note_gives_the_ratio_to_pytorch_fused_and_gbs():
    row = {"name": "adam", "leaves": 4, "jdl_ms": 2.0, "optax_ms": 2.0, "ratio": 1.0, "jdl_bytes": 400.0,
           "optax_bytes": 400.0, "jdl_cpu_ms": 2.0, "torch_fused_ms": 1.0, "torch_fused_cpu_ms": 1.0,
           "vs_fused": 2.0, "vs_fused_cpu": 2.0, "jdl_gbs": 0.2, "jdl_cpu_gbs": 0.2}
    result = {"rows": [row], "params": 10, "repeats": 3, "device": "cpu", "copy_gbs": 50.0, "copy_cpu_gbs": 60.0}
    text = bench.table(result)
    assert "| adam | 4 | 2.000 | 2.000 | 1.000 | 1.000 | 1.000 | — | 2.000 | 2.000 | 1.000 | 2.000 |" in text
    assert "jdl/PyTorch-fused 2.00 (CPU 2.00); jdl moves 40 B/param" in text and "50.0 GB/s wall" in text


def test_torch_rows_time_the_same_updates():
    """PyTorch's fused and foreach rows run (tiny sizes) and report positive times."""
    from benchmarks import optim_torch

    rows = optim_torch.run_rows(["adam", "sgd_momentum", "sgd"], 1_000, [2], 2, threads=None)["rows"]
    assert [(r["name"], r["variant"]) for r in rows] == [("adam", "fused"), ("adam", "foreach"),
                                                         ("sgd_momentum", "fused"), ("sgd_momentum", "foreach")]
    assert all(r["ms"] > 0 and r["leaves"] == 2 for r in rows)


@pytest.mark.parametrize("variant", ["fused", "foreach"])
@pytest.mark.parametrize("name", ["adam", "sgd_momentum"])
def test_torch_rows_are_the_same_update_as_jdls(name, variant):
    """Two steps of PyTorch's row (its class and arguments in optim_torch.TORCH) equal two steps
    of jdl's row of the same name: the ratio compares the same arithmetic."""
    import numpy as np
    import torch

    from benchmarks import optim_torch

    rng = np.random.default_rng(0)
    p0, g = rng.normal(size=(2, 50)).astype(np.float32)
    cls, kwargs = optim_torch.TORCH[name]
    p = torch.nn.Parameter(torch.tensor(p0))
    opt = getattr(torch.optim, cls)([p], **kwargs, **{variant: True})
    ours, state = {"p": p0}, None
    jdl_opt = bench.OPTIMIZERS[name](optim)
    state = jdl_opt.init(ours)
    for _ in range(2):
        p.grad = torch.tensor(g)
        opt.step()
        u, state = jdl_opt.update({"p": g}, state, ours)
        ours = optim.apply_updates(ours, u)
    np.testing.assert_allclose(p.detach().numpy(), np.asarray(ours["p"]), rtol=1e-6, atol=1e-7)
