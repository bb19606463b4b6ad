"""``python -m benchmarks.run --quick --workloads=char_lstm``: the character LSTM in jdl, flax and
PyTorch, float32 and bfloat16, each in its own process. A file of its own so that pytest-xdist
runs it beside the other workloads' (``--dist loadfile``)."""

from benchmarks.workloads import char_lstm
from tests.benchmarks.quick_command import run_quick


def test_quick_command_runs_char_lstm_in_every_library_and_dtype(tmp_path):
    saved, stdout = run_quick(tmp_path, ["char_lstm"], [])
    assert saved["workloads"]["char_lstm-bf16"]["spec"]["flops"] == char_lstm.flops()
    assert "char_lstm-bf16" in stdout
