"""``python -m benchmarks.run --quick --workloads=gpt``: the GPT workload (at its quick size,
``gpt.QUICK``) in jdl, flax and PyTorch, float32 and bfloat16, each in its own process. A file of
its own so that pytest-xdist runs it beside the other workloads' (``--dist loadfile``). The one
quick command run with a worker process per measurement, as real runs are (the others run in
one process): the workers' environment, their RESULT line, and keep_host_memory in jdl's GPT
worker."""

from benchmarks.workloads import gpt
from tests.benchmarks.quick_command import run_quick


def test_quick_command_runs_gpt_in_every_library_and_dtype(tmp_path):
    saved, stdout = run_quick(tmp_path, ["gpt"], [], isolation="process")
    w = saved["workloads"]["gpt"]
    assert w["spec"]["flops"] == gpt.flops(gpt.QUICK) and w["options"]["sizes"]["d_model"] == gpt.QUICK.d_model
    assert "gpt-bf16" in stdout and saved["isolation"] == "process" and saved["keep_host_memory"] == ["jdl"]
