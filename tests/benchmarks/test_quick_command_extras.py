"""``python -m benchmarks.run --quick --workloads= --extras=...``: every extra benchmark but the
per-example one (run in-process by ``test_harness.py::test_quick_run_end_to_end``), each in its
own process; a file of its own so that pytest-xdist runs it beside the workloads' files."""

from benchmarks.extras import EXTRAS
from tests.benchmarks.quick_command import IN_PROCESS_EXTRAS, run_quick


def test_quick_command_runs_every_extra(tmp_path):
    saved, _ = run_quick(tmp_path, [], [e for e in EXTRAS if e not in IN_PROCESS_EXTRAS])
    depth = saved["extras"]["depth"]["rows"]
    assert {(r["layers"], r["kind"]) for r in depth} == {(n, k) for n in (2, 4) for k in ("loop", "repeat", "repeat_unroll2")}
    assert all(r["step_ms"] > 0 and r["first_call_s"] > 0 for r in depth)
    rows = saved["extras"]["optim"]["rows"]
    assert rows and all(r["jdl_ms"] > 0 and r["optax_ms"] > 0 for r in rows)
