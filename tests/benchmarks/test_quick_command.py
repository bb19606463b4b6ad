"""``python -m benchmarks.run --quick`` as CI runs it, split so that pytest-xdist's ``--dist
loadfile`` spreads it over its workers: GPT and the char-LSTM have files of their own
(``test_quick_command_<name>.py``), the extras another (``test_quick_command_extras.py``; the
per-example one runs in-process in ``test_harness.py::test_quick_run_end_to_end``), and this file
runs every other workload — so a workload added later is run here unless it gets a file of its own."""

import re
from pathlib import Path

from benchmarks.extras import EXTRAS
from benchmarks.workloads import WORKLOADS
from tests.benchmarks.quick_command import IN_PROCESS_EXTRAS, run_quick

OWN_FILES = ("gpt", "char_lstm")


def test_own_files_and_in_process_extras_exist():
    here = Path(__file__).parent
    for name in OWN_FILES:
        assert name in WORKLOADS and (here / f"test_quick_command_{name}.py").exists()
    assert set(IN_PROCESS_EXTRAS) <= set(EXTRAS)
    assert "--extras=per_example" in (here / "test_harness.py").read_text() and IN_PROCESS_EXTRAS == ("per_example",)


def test_the_quick_command_runs_the_other_workloads(tmp_path):
    rest = [n for n in WORKLOADS if n not in OWN_FILES]
    saved, stdout = run_quick(tmp_path, rest, [])
    assert {"mlp", "lenet5"} <= set(rest)
    assert saved["workloads"]["mlp"]["spec"]["flops"] == 410_779_648
    assert re.search(r"^lenet5-bf16 +torch ", stdout, re.M)  # the table
