"""One measurement, in the process that runs it: ``python -m benchmarks.worker '<json>'``
prints one line ``RESULT <json>``. The parent starts one such process per implementation and
round, so that no two libraries' thread pools share a process (XLA's and OpenBLAS's threads
keep spinning for a while after a call and would steal the cores of the next one).

The config is {'kind': 'machine', 'quick'}, {'kind': 'optim_jax' or 'optim_torch', 'args'} (benchmarks.optim),
{'kind': 'workload', 'workload', 'impl', 'options', 'n_steps', 'n_blocks',
'n_warmup', 'device', 'keep_host_memory'} or {'kind': 'extra', 'extra': name, 'quick': bool, ...}.
"""

from __future__ import annotations

import json
import sys


def measure(config: dict) -> dict:
    """Run one config (see the module docstring) and return its result dict."""
    if config["kind"] == "machine":
        from benchmarks import machine

        return {"info": machine.info(), "ceilings": machine.ceilings(quick=config["quick"])}
    if config["kind"] == "extra":
        from benchmarks import extras

        return extras.run(config["extra"], quick=config["quick"], seed=config.get("seed", 0))
    if config["kind"] in ("optim_jax", "optim_torch"):
        if config["args"].get("threads") == 1:  # before XLA's pool (sized by the cores) starts
            from benchmarks.timing import pin_to_one_core

            pin_to_one_core()
        from benchmarks import optim, optim_torch

        return (optim.run_rows if config["kind"] == "optim_jax" else optim_torch.run_rows)(**config["args"])
    from benchmarks.timing import measure as time_runner
    from benchmarks.workloads import WORKLOADS

    workload = WORKLOADS[config["workload"]]
    if config.get("keep_host_memory") and getattr(workload, "LARGE_TEMPORARIES", False):
        from jdl.runtime import keep_host_memory  # before the first step

        keep_host_memory()
    from benchmarks.workloads.common import Skip

    try:
        runner = workload.build(config["impl"], config["options"], config.get("device", "cpu"))
    except Skip as why:  # this implementation cannot run here: reported as such, not as an error
        return {"skipped": str(why)}
    return time_runner(runner, config["n_steps"], config["n_blocks"], config["n_warmup"])


if __name__ == "__main__":
    print("RESULT " + json.dumps(measure(json.loads(sys.argv[1]))), flush=True)
