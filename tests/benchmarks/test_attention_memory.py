"""The attention memory benchmark runs, writes its JSON and plot, and finds the blockwise
kernel's temporaries below the plain attention's."""

import json

from benchmarks import attention_memory


def test_runs_and_writes_json_and_plot(tmp_path):
    rows = attention_memory.main(["--lengths=512", "--heads=1", "--d=8", "--block=64",
                                  f"--out={tmp_path}"])
    by = {r["impl"]: r["temp_mib"] for r in rows}
    assert set(by) == {"plain", "jax", "blockwise"}
    assert by["blockwise"] < by["plain"] / 4  # 512² floats = 1 MiB per n × n array
    saved = json.loads((tmp_path / "attention_memory.json").read_text())
    assert saved["rows"] == rows
    assert (tmp_path / "attention_memory.png").stat().st_size > 0
