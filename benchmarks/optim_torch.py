"""PyTorch's multi-tensor optimizer updates, the bar for ``benchmarks.optim``: ``fused=True``
(one kernel over all params, reading g, m, v, θ once and writing m, v, θ once) and
``foreach=True`` (one ``torch._foreach_*`` call per arithmetic step over the list of params).

Same sizes as the JAX rows (n_params float32 numbers in n_leaves vectors), the same
hyperparameters as ``benchmarks.optim.OPTIMIZERS`` for the rows that PyTorch has, each
``opt.step()`` timed alone (wall and CPU time); run in its own process (``benchmarks.worker``
config ``{'kind': 'optim_torch', ...}``) so that no JAX thread pool shares it.
"""

from __future__ import annotations

import statistics
import time

# name -> (torch.optim class name, keyword arguments); the same updates as OPTIMIZERS' rows
TORCH = {
    "adam": ("Adam", {"lr": 1e-3}),
    "sgd_momentum": ("SGD", {"lr": 0.01, "momentum": 0.9}),
}
VARIANTS = ("fused", "foreach")


def time_torch(name: str, variant: str, n_params: int, n_leaves: int, repeats: int,
               threads: int | None = None) -> dict:
    """Median wall and CPU ms of one ``opt.step()`` of PyTorch's ``name`` (a key of ``TORCH``)
    with ``variant`` (``'fused'`` or ``'foreach'``) on n_leaves random float32 vectors holding
    n_params numbers; ``threads``: ``torch.set_num_threads`` (None: PyTorch's default)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    cls, kwargs = TORCH[name]
    gen = torch.Generator().manual_seed(0)
    size = n_params // n_leaves
    params = [torch.nn.Parameter(torch.randn(size, generator=gen)) for _ in range(n_leaves)]
    for p in params:
        p.grad = torch.randn(size, generator=gen)
    opt = getattr(torch.optim, cls)(params, **kwargs, **{variant: True})
    opt.step()  # allocates the state (m, v or the momentum buffer)
    wall, cpu = [], []
    with torch.no_grad():
        for _ in range(repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            opt.step()
            wall.append((time.perf_counter() - start) * 1e3)
            cpu.append((time.process_time() - start_cpu) * 1e3)
    return {"name": name, "variant": variant, "leaves": n_leaves, "ms": statistics.median(wall),
            "cpu_ms": statistics.median(cpu), "threads": torch.get_num_threads()}


def run_rows(names: list[str], n_params: int, leaves: list[int], repeats: int, threads: int | None) -> dict:
    """Every (leaves, name, variant) row that PyTorch has, in this process; {'rows': [...]}."""
    rows = [time_torch(name, variant, n_params, n_leaves, repeats, threads)
            for n_leaves in leaves for name in names if name in TORCH for variant in VARIANTS]
    return {"rows": rows}
