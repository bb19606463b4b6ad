"""The harness: statistics, the recompilation guard, and a quick run end to end in this process
(nothing about time is asserted, only that every piece is there and holds numbers that can be
checked). The command line itself runs in test_quick_command*.py."""

import json

import jax
import jax.numpy as jnp
import pytest

from benchmarks import run, timing
from benchmarks.workloads import common, mlp


def test_summarize():
    s = timing.summarize([2.0, 1.0, 4.0])
    assert (s["median"], s["min"], s["max"], s["n"]) == (2.0, 1.0, 4.0, 3)
    assert s["spread"] == pytest.approx(1.5)  # (4 − 1) / 2


def test_recompilation_after_warmup_fails_loudly():
    counted, traces = timing.trace_counter()
    step = jax.jit(counted(lambda c, b: (c + b.sum(), {})))
    sizes = iter(range(1, 100))  # a new batch shape every call: a retrace every step

    def runner_step():
        c, _ = step(jnp.zeros(()), jnp.ones(next(sizes)))
        return c

    runner = timing.Runner(lambda: {"trace_lower_s": 0.0, "first_call_s": 0.0}, runner_step,
                           jax.block_until_ready, traces)
    with pytest.raises(RuntimeError, match="recompiles"):
        timing.measure(runner, n_steps=2, n_blocks=1, n_warmup=1)


def test_jax_runner_traces_once(tmp_path):
    options = mlp.configure(quick=True, seed=0, workdir=str(tmp_path))["options"]
    result = timing.measure(mlp.build("jdl", options), n_steps=2, n_blocks=2, n_warmup=1)
    assert result["traces"] == 1 and len(result["block_ms"]) == 2 and result["step_ms"] > 0


def test_quick_run_end_to_end(tmp_path):
    out, docs = tmp_path / "out", tmp_path / "docs"
    results = run.main(["--quick", "--workloads=mlp", "--impls=jdl,flax", "--extras=per_example",
                        "--dtypes=float32,bfloat16",
                        "--isolation=block", "--out", str(out), "--docs", str(docs)])
    saved = json.loads((out / "results.json").read_text())
    w = saved["workloads"]["mlp"]
    assert w["spec"]["flops"] == 410_779_648
    assert set(w["impls"]) == {"jdl", "flax"} and "jdl/flax" in w["ratios"]
    jdl_ms = w["impls"]["jdl"]["step_ms"]["median"]
    assert w["ratios"]["jdl/flax"]["median"] == pytest.approx(jdl_ms / w["impls"]["flax"]["step_ms"]["median"])
    assert w["impls"]["jdl"]["gflops"] == pytest.approx(410_779_648 / jdl_ms / 1e6)
    assert saved["ceilings"]["matmul_gflops"] > 0 and saved["machine"]["versions"]["jax"]
    bf16 = saved["workloads"]["mlp-bf16"]
    assert bf16["spec"]["dtype"] == "bfloat16" and bf16["options"]["dtype"] == "bfloat16"
    ceiling = saved["ceilings"]["matmul_gflops_by_dtype"]["bfloat16"]
    assert bf16["impls"]["jdl"]["mfu"] == pytest.approx(bf16["impls"]["jdl"]["gflops"] / ceiling)
    assert saved["ceilings"]["nominal_peak_tflops"] is None  # a CPU has no maker's peak here
    assert saved["extras"]["per_example"]["max_abs_diff_vs_vmap"] < 1e-5
    page = (docs / "benchmarks.md").read_text()
    assert "| mlp | flax |" in page and "| mlp-bf16 | jdl |" in page and (docs / "img" / "benchmarks_ratios.png").stat().st_size > 1000
    assert results["workloads"]["lenet5" if "lenet5" in results["workloads"] else "mlp"]


def test_an_implementation_that_cannot_run_here_is_skipped_not_failed(tmp_path, monkeypatch):
    """A workload's build raising Skip for one implementation (e.g. PyTorch without a bfloat16
    LSTM on this CPU) gives that row {'skipped': reason}, no ratio, and a table row saying so."""
    from benchmarks import report, worker

    def build(impl, options, device="cpu"):
        if impl == "flax":
            raise common.Skip("no flax here")
        return real_build(impl, options, device)

    real_build = mlp.build
    monkeypatch.setattr(mlp, "build", build)
    options = mlp.configure(quick=True, seed=0, workdir=str(tmp_path))
    config = {"kind": "workload", "workload": "mlp", "options": options["options"], "n_steps": 2,
              "n_blocks": 1, "n_warmup": 1}
    runs = {impl: [worker.measure({**config, "impl": impl})] for impl in ("jdl", "flax")}
    assert runs["flax"] == [{"skipped": "no flax here"}]
    ceilings = {"matmul_gflops": 100.0, "copy_gbs": 10.0}
    result = run.aggregate({"spec": options["spec"], "options": options["options"]}, runs, ceilings)
    assert result["impls"]["flax"] == {"skipped": "no flax here"} and result["ratios"] == {}
    assert result["impls"]["jdl"]["step_ms"]["median"] > 0
    rows = report.workload_rows({"workloads": {"mlp": result}})
    assert rows[1][:3] == ["mlp", "flax", "skipped: no flax here"]


def test_unknown_names_are_rejected():
    with pytest.raises(SystemExit):
        run.parse(["--workloads=nope"])


def test_hugepages_reach_the_workers_environment_only(monkeypatch):
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
    env = run._env("cpu", hugepages=True)
    assert env["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"
    assert run._env("cpu")["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2"
    monkeypatch.delenv("GLIBC_TUNABLES")
    assert run._env("cpu", hugepages=True)["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=1"
    assert "GLIBC_TUNABLES" not in run._env("cpu")
    with pytest.raises(SystemExit):  # a worker started in this process cannot get the tunable
        run.parse(["--hugepages", "--isolation=block"])


def test_dtypes_default_by_device_and_nominal_peaks():
    assert run.parse([]).dtypes == ["float32"]
    assert run.parse(["--device=gpu"]).dtypes == ["float32", "bfloat16"]
    with pytest.raises(SystemExit):
        run.parse(["--dtypes=float8"])
    from benchmarks import machine

    assert machine.nominal_peak("NVIDIA H200")["bfloat16"] == pytest.approx(989.4)
    assert machine.nominal_peak("NVIDIA A100-SXM4-80GB")["float32"] == pytest.approx(156.0)
    assert machine.nominal_peak("cpu") is None
