"""Turn results.json into a table (stdout), docs/benchmarks.md and a bar chart of the ratios.

``python -m benchmarks.report runs/benchmarks/results.json --docs docs`` regenerates the page
from a saved run without timing anything again.
"""

from __future__ import annotations

import argparse
import json
import os


def _pm(s: dict, fmt: str = "{:.3f}") -> str:
    return f"{fmt.format(s['median'])} ±{100 * s['spread'] / 2:.0f}%"


def workload_rows(results: dict) -> list[list[str]]:
    """One row per (workload, implementation): ms/step ±half-spread, first call s, GFLOP/s,
    MFU, and the ratio jdl/impl (median over rounds, ±half-spread)."""
    rows = []
    for name, w in results["workloads"].items():
        if "skipped" in w:
            rows.append([name, "-", f"skipped: {w['skipped']}"] + [""] * 6)
            continue
        for impl, r in w["impls"].items():
            if "error" in r or "skipped" in r:
                rows.append([name, impl, f"error: {r['error'][:60]}" if "error" in r
                             else f"skipped: {r['skipped'][:60]}"] + [""] * 6)
                continue
            ratio, ratio_cpu = w["ratios"].get(f"jdl/{impl}"), w["ratios"].get(f"jdl/{impl} CPU")
            rows.append([name, impl, _pm(r["step_ms"]), f"{r['cpu_ms']['median']:.2f}",
                         f"{r['first_call_s']['median']:.2f}",
                         f"{r['gflops']:.1f}", f"{100 * r['mfu']:.1f}%" + (
                             f" ({100 * r['mfu_nominal']:.1f}% of peak)" if "mfu_nominal" in r else ""),
                         _pm(ratio, "{:.2f}") if ratio else ("1" if impl == "jdl" else ""),
                         _pm(ratio_cpu, "{:.2f}") if ratio_cpu else ("1" if impl == "jdl" else "")])
    return rows


HEADER = ["workload", "impl", "ms/step", "CPU ms/step", "first call s", "GFLOP/s", "MFU", "jdl/impl",
          "jdl/impl CPU"]


def _format(rows: list[list[str]], header: list[str], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    return "\n".join([fmt.format(*header)] + [fmt.format(*r) for r in rows])


def extra_sections(results: dict, markdown: bool) -> list[str]:
    """The depth, per-example and optimizer tables, as text blocks."""
    out = []
    ex = results.get("extras", {})
    d = ex.get("depth", {})
    if "rows" in d:
        rows = [[str(r["layers"]), r["kind"], f"{r['trace_lower_s']:.2f}", f"{r['first_call_s']:.2f}",
                 f"{r['first_call_cpu_s']:.2f}", f"{r['step_ms']:.2f}", f"{r['cpu_ms']:.2f}"] for r in d["rows"]]
        out.append((f"Compile time against depth: residual blocks x + Dense({d['width']})(tanh(Dense"
                    f"({2 * d['width']})(x))), batch {d['batch']}",
                    _format(rows, ["layers", "built as", "trace+lower s", "first call s", "first call CPU s",
                                   "ms/step", "CPU ms/step"], markdown)))
    p = ex.get("per_example", {})
    if "ms" in p:
        rows = [[k, f"{v:.2f}"] for k, v in p["ms"].items()]
        out.append((f"Per-example gradients, MLP 784-512-512-10, batch {p['batch']} "
                    f"(max |jdl − vmap| = {p['max_abs_diff_vs_vmap']:.1e})",
                    _format(rows, ["method", "ms/call"], markdown)))
    o = ex.get("optim", {})
    if "rows" in o:
        keys = ("jdl_ms", "optax_ms", "ratio", "torch_fused_ms", "torch_foreach_ms", "vs_fused")
        rows = [[str(r.get("name")), str(r.get("leaves")), *(f"{r.get(k, float('nan')):.2f}" for k in keys)]
                for r in o["rows"]]
        out.append((f"Optimizer updates ({o.get('params', '?')} params)",
                    _format(rows, ["update", "leaves", "jdl ms", "optax ms", "jdl/optax", "PyTorch fused ms",
                                   "PyTorch foreach ms", "jdl/fused"], markdown)))
    elif o:
        out.append(("Optimizer updates", o.get("skipped", o.get("error", ""))))
    for name, e in ex.items():
        if "error" in e:
            out.append((name, "error: " + e["error"]))
    return [f"{'### ' if markdown else '== '}{title}\n\n{body}" for title, body in out]


def ceilings_text(c: dict) -> str:
    """'float32 matmul 2048³ … GFLOP/s, bfloat16 …; nominal peak …' from the measured ceilings."""
    by_dtype = c.get("matmul_gflops_by_dtype", {"float32": c["matmul_gflops"]})
    text = ", ".join(f"{d} matmul {c['matmul_n']}³ {g:.0f} GFLOP/s" for d, g in by_dtype.items())
    if c.get("nominal_peak_tflops"):
        text += f"; nominal peak of the {c['device_kind']}: " + ", ".join(
            f"{d} {t:.0f} TFLOP/s" for d, t in c["nominal_peak_tflops"].items())
    return text


def table(results: dict) -> str:
    """The plain-text report printed at the end of a run."""
    c = results["ceilings"]
    head = (f"ceilings: {ceilings_text(c)}, "
            f"copy {c['copy_gbs']:.1f} GB/s; rounds {results['rounds']}, {results['isolation']} isolation"
            + (" (QUICK: timings mean nothing)" if results["quick"] else ""))
    return "\n\n".join([head, _format(workload_rows(results), HEADER, False)]
                       + extra_sections(results, False))


def bar_chart(results: dict, path: str) -> str:
    """A PNG of the step-time ratios jdl/flax and jdl/PyTorch per workload (1 = a tie)."""
    from matplotlib.figure import Figure

    names = [n for n, w in results["workloads"].items() if w.get("ratios")]
    others = sorted(k for k in {k for n in names for k in results["workloads"][n]["ratios"]}
                    if not k.endswith(" CPU"))
    fig = Figure(figsize=(6, 3.2), dpi=100)
    ax = fig.subplots()
    width = 0.8 / max(len(others), 1)
    for j, key in enumerate(others):
        meds, errs = [], [[], []]
        for n in names:
            s = results["workloads"][n]["ratios"].get(key)
            meds.append(s["median"] if s else 0)
            errs[0].append(s["median"] - s["min"] if s else 0)
            errs[1].append(s["max"] - s["median"] if s else 0)
        ax.bar([i + j * width for i in range(len(names))], meds, width, yerr=errs, capsize=3, label=key)
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xticks([i + width * (len(others) - 1) / 2 for i in range(len(names))], names)
    ax.set_ylabel("step time ratio (< 1: jdl faster)")
    ax.legend(frameon=False)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path)
    return path


def markdown(results: dict, image: str) -> str:
    """docs/benchmarks.md: how it was run, the machine, the tables and the chart."""
    m, c = results["machine"], results["ceilings"]
    v = ", ".join(f"{k} {x}" for k, x in m["versions"].items() if x)
    specs = "\n".join(f"- **{n}**: {w['spec']['description']}; {w['spec']['flops'] / 1e6:.1f} MFLOP/step "
                      f"(matmuls), at least {w['spec']['min_bytes'] / 1e6:.1f} MB/step; floors at the "
                      f"ceilings: compute {w['compute_floor_ms']:.3f} ms, memory {w['memory_floor_ms']:.3f} ms"
                      for n, w in results["workloads"].items() if "spec" in w)
    return "\n".join([
        "# Benchmarks",
        "",
        "_Generated by `benchmarks/report.py` from `results.json`; do not edit by hand._",
        "",
        *([f"**Provisional**: the load average at start was {m['load_average'][0]:.1f} on {m['cores']} "
           "cores, so other processes shared the CPUs; wall-clock figures (and MFU) are unreliable, "
           "CPU-time ratios less so. Re-run on an idle machine.", ""]
          if m["load_average"][0] > 0.5 * (m["cores"] or 1) else []),
        f"Command: `{results['command']}` ({results['rounds']} rounds, {results['isolation']} isolation, "
        f"{results['blocks']} blocks of {results['steps_per_block']} steps per measurement; "
        f"{results['wall_s'] / 60:.1f} min).",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['platform']}; devices {m['devices']}; "
        f"load average at start {', '.join(f'{x:.1f}' for x in m['load_average'])}.",
        f"Libraries: {v}; torch threads {m['torch_threads']}; env {m['env']}.",
        f"Ceilings measured at start (XLA): {ceilings_text(c)}; "
        f"in-place x+1 on a donated {c['copy_mib']:.0f} MiB buffer {c['copy_gbs']:.1f} GB/s (read + write).",
        "",
        "Each number is the median over rounds of one process's median over blocks; ± is half the "
        "spread (max − min)/median over rounds. jdl/impl is the ratio of step times in the same "
        "round (≤ 1: jdl as fast or faster), in wall time and in CPU time. CPU ms/step is the process's CPU time (all threads) "
        "per step, steadier than wall time on a shared machine. MFU = achieved GFLOP/s / the matmul ceiling "
        "of the workload's dtype (and / the nominal peak, on a GPU of known kind); rows ending in -bf16 "
        "are mixed precision (float32 params, bfloat16 compute) in all three libraries. "
        "First call = trace + compile + one step.",
        "",
        "What was tried to make each row fast, what did not work and why (the `repeat` step, the "
        "bfloat16 rows on a CPU): [benchmarks/NOTES.md](../benchmarks/NOTES.md).",
        "",
        "## Workloads",
        "",
        specs,
        "",
        _format(workload_rows(results), HEADER, True),
        "",
        f"![step-time ratios]({image})",
        "",
        *[s + "\n" for s in extra_sections(results, True)],
    ])


def write_docs(results: dict, docs: str) -> str:
    """Write ``<docs>/benchmarks.md`` and ``<docs>/img/benchmarks_ratios.png``; returns the page path."""
    bar_chart(results, os.path.join(docs, "img", "benchmarks_ratios.png"))
    page = os.path.join(docs, "benchmarks.md")
    kept = kept_sections(page)
    with open(page, "w") as f:
        f.write(markdown(results, "img/benchmarks_ratios.png") + (f"\n{kept}\n" if kept else ""))
    return page


def kept_sections(page: str) -> str:
    """The sections of an existing ``page`` that other scripts write and this page keeps, each
    between its markers: the startup table of ``benchmarks/startup.py``, the ``repeat``
    custom-VJP table (``benchmarks/repeat_vjp.py``) and the optimizer updates against PyTorch's
    fused ones (``benchmarks/optim.py``); '' when there is none."""
    from benchmarks.startup import BEGIN, END

    if not os.path.exists(page):
        return ""
    with open(page) as f:
        text = f.read()
    markers = [(BEGIN, END), ("<!-- repeat_vjp: begin -->", "<!-- repeat_vjp: end -->"),
               ("<!-- optim_fused: begin -->", "<!-- optim_fused: end -->"), PARTIAL]
    return "\n\n".join(text[text.index(b):text.index(e) + len(e)] for b, e in markers
                        if b in text and e in text)


PARTIAL = ("<!-- partial runs: begin -->", "<!-- partial runs: end -->")


def _large_temporaries(row: dict) -> bool:
    """Whether a results row's workload declares ``LARGE_TEMPORARIES`` (where the harness applies
    ``keep_host_memory``)."""
    from benchmarks.workloads import WORKLOADS

    workload = WORKLOADS.get(row.get("spec", {}).get("workload", ""))
    return bool(getattr(workload, "LARGE_TEMPORARIES", False))


def partial_section(results: dict) -> str:
    """One run of some workloads only (e.g. ``--workloads=gpt`` on an idle machine), as a
    subsection headed by its workloads: command, machine, ceilings and the workload table."""
    m, c = results["machine"], results["ceilings"]
    kept = [n for n, w in results["workloads"].items() if _large_temporaries(w)]
    return "\n".join([
        f"### Workloads: {', '.join(results['workloads'])}",
        "",
        f"Command: `{results['command']}` ({results['rounds']} rounds; {results['wall_s'] / 60:.1f} min); "
        f"`keep_host_memory` in the workers of {results.get('keep_host_memory', []) if kept else 'none'} "
        f"(it applies to the workloads with large temporaries: {', '.join(kept) or 'none here'}). Machine: {m['cpu']}, "
        f"{m['cores']} cores, load average at start {', '.join(f'{x:.1f}' for x in m['load_average'])}; "
        f"ceilings {ceilings_text(c)}.",
        "",
        _format(workload_rows(results), HEADER, True),
    ])


def add_partial(results: dict, docs: str) -> str:
    """Put ``partial_section(results)`` into ``<docs>/benchmarks.md``'s partial-runs block,
    replacing the subsection of the same workloads; the rest of the page is left as it is."""
    page = os.path.join(docs, "benchmarks.md")
    with open(page) as f:
        text = f.read()
    begin, end = PARTIAL
    heading = "## Runs of some workloads"
    if begin not in text:
        text = text.rstrip("\n") + f"\n\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    body, tail = rest.split(end, 1)
    new = partial_section(results)
    title = new.split("\n", 1)[0]
    chunks = body.replace(heading, "").split("\n### ")
    kept = ["### " + c.strip().removeprefix("### ") for c in chunks if c.strip()]
    sections = [c for c in kept if not c.startswith(title + "\n")] + [new]
    with open(page, "w") as f:
        f.write(head + begin + f"\n{heading}\n\n" + "\n\n".join(sections) + "\n" + end + tail)
    return page


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Regenerate the benchmark page from results.json")
    parser.add_argument("results")
    parser.add_argument("--docs", default="docs")
    parser.add_argument("--partial", action="store_true",
                        help="add the run as a subsection of some workloads, leaving the rest of the page")
    a = parser.parse_args()
    with open(a.results) as f:
        results = json.load(f)
    print(add_partial(results, a.docs) if a.partial else write_docs(results, a.docs))
