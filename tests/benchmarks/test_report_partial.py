"""benchmarks.report --partial: a run of some workloads goes into its own subsection of
docs/benchmarks.md, replacing the previous run of the same workloads, and survives a full
regeneration of the page (kept_sections)."""

from benchmarks import report


def fake_results(workloads, ms):
    stat = lambda x: {"median": x, "spread": 0.02}  # noqa: E731
    impl = {"step_ms": stat(ms), "cpu_ms": stat(2 * ms), "first_call_s": stat(3.0), "gflops": 90.0, "mfu": 0.5}
    return {"command": "python -m benchmarks.run --workloads=" + ",".join(workloads), "rounds": 2, "wall_s": 60.0,
            "keep_host_memory": ["jdl"],
            "machine": {"cpu": "cpu", "cores": 2, "load_average": [0.1, 0.2, 0.3]},
            "ceilings": {"matmul_gflops": 160.0, "matmul_n": 2048, "matmul_gflops_by_dtype": {"float32": 160.0, "bfloat16": 130.0}},
            "workloads": {w: {"impls": {"jdl": impl}, "ratios": {}} for w in workloads}}


def test_partial_runs_replace_their_own_subsection_and_are_kept(tmp_path):
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\nfull run tables\n")
    report.add_partial(fake_results(["gpt"], 400.0), str(tmp_path))
    report.add_partial(fake_results(["char_lstm"], 55.0), str(tmp_path))
    report.add_partial(fake_results(["gpt"], 450.0), str(tmp_path))  # replaces the first gpt run
    text = page.read_text()
    assert text.startswith("# Benchmarks\n\nfull run tables\n")
    assert text.count("### Workloads: gpt") == 1 and text.count("### Workloads: char_lstm") == 1
    assert "450.000" in text and "400.000" not in text and "55.000" in text
    assert text.count("## Runs of some workloads") == 1
    kept = report.kept_sections(str(page))
    assert kept.startswith(report.PARTIAL[0]) and "450.000" in kept and kept.endswith(report.PARTIAL[1])
