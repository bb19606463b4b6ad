"""Startup time: from process start to the first finished training step, in fresh processes.

For each workload of the harness (mlp, lenet5, char_lstm) and each implementation (jdl,
flax+optax, PyTorch eager) a new Python process is started and timed in three phases:

    imports = interpreter start + importing the library and the workload module
    init    = the library's own init of the model (jdl ``init_train_state``, flax
              ``module.init``, PyTorch module construction + optimizer)
    step    = building the jitted step, tracing, compiling and running it once (PyTorch: one
              eager step), waited for

each in wall time (from just before the parent spawns the child) and in the child's CPU time.
JAX runs twice: cold (no persistent compilation cache) and cached (JAX's persistent
compilation cache in a folder that an untimed run filled first, with
``jax_persistent_cache_min_compile_time_secs=0`` and ``..._min_entry_size_bytes=-1`` so that
every program is cached, as ``jdl train --compilation_cache`` does). ``jdl train`` (the default
MLP on digits, one epoch) is timed as a whole process, cold (``--compilation_cache=none``) and
cached. ``--baseline=DIR`` adds cold-start rows for another copy of the ``jdl`` package
(DIR/jdl), so that a change is measured against its base in the same rounds. Rounds alternate the order of the
runs; the table gives medians over rounds.

    python -m benchmarks.startup --rounds=3 [--baseline=/tmp/jdl_base] [--docs=docs]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

WORKLOADS = ("mlp", "lenet5", "char_lstm")
PHASES = ("imports", "init", "step")
CACHE_FLAGS = {"JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1"}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _data(wl, seed: int):
    return wl.data(wl.BATCH, seed) if wl.NAME == "mlp" else wl.data(seed)


def _flax_module(wl, options: dict):
    if wl.NAME == "lenet5":
        return wl.flax_model(options["act"], options["pool"], options["pad1"])
    return wl.flax_model()


def child(workload: str, impl: str, options: dict) -> dict:
    """Run one implementation's first training step in this (fresh) process; returns the wall
    (since the parent's spawn, ``$STARTUP_T0``) and CPU seconds at the end of each phase."""
    marks = {}

    def mark(name: str, block=None) -> None:
        if block is not None:
            import jax

            jax.block_until_ready(block)
        marks[name] = (time.time() - float(os.environ["STARTUP_T0"]), time.process_time())

    import importlib

    if impl == "torch":
        import torch  # noqa: F401
    else:
        import jax
        import jax.numpy as jnp

        if impl == "jdl":
            import jdl
            from jdl.losses import softmax_cross_entropy
            from jdl.train.state import init_train_state
            from jdl.train.step import make_step
            from jdl.train.supervised import supervised
        else:
            import flax.linen  # noqa: F401
            import optax  # noqa: F401
    wl = importlib.import_module(f"benchmarks.workloads.{workload}")
    from benchmarks.workloads import common

    mark("imports")
    x, y = _data(wl, options["seed"])
    if impl == "jdl":
        model, opt = wl.jdl_model(), getattr(jdl.optim, options["optimizer"])(common.LEARNING_RATE)
        ts = init_train_state(model, opt, jnp.asarray(x), seed=0)
        mark("init", ts)
        step = make_step(supervised(model, softmax_cross_entropy), opt)
        mark("step", step(ts, (jnp.asarray(x), jnp.asarray(y)))[1])
    elif impl == "flax":
        module = _flax_module(wl, options)
        params = module.init(jax.random.key(0), jnp.asarray(x))["params"]
        mark("init", params)
        common.flax_runner(module, params, options["optimizer"], (jnp.asarray(x), jnp.asarray(y))).first_call()
        mark("step")
    else:
        runner = wl.build("torch", options)
        mark("init")
        runner.first_call()
        mark("step")
    return marks


def spawn(argv: list[str], env: dict) -> tuple[float, float, str]:
    """Run ``argv`` in a fresh process; (wall s, CPU s of the child, its stdout)."""
    import resource

    env = {**os.environ, **env, "STARTUP_T0": repr(time.time())}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # cwd: a folder without a jdl package, since ``python -m`` puts the cwd first on sys.path,
    # before PYTHONPATH (which chooses between the jdl under test and --baseline's)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, proc.stdout


def _env(pythonpath: str, cache: str | None) -> dict:
    env = {"PYTHONPATH": pythonpath, "JAX_PLATFORMS": "cpu"}
    if cache:
        env.update(JAX_COMPILATION_CACHE_DIR=cache, **CACHE_FLAGS)
    return env


def run_workload(workload: str, impl: str, options: dict, pythonpath: str, cache: str | None) -> dict:
    """One fresh process: {phase: (wall s, CPU s)} at the end of each phase, plus 'total'."""
    _, cpu, out = spawn([sys.executable, "-m", "benchmarks.startup", "--child", workload, impl, json.dumps(options)],
                        _env(pythonpath, cache))
    marks = json.loads(out.strip().splitlines()[-1])
    return {**{k: tuple(v) for k, v in marks.items()}, "total": (marks["step"][0], cpu)}


def run_train(pythonpath: str, cache: str | None, workdir: str) -> dict:
    """``jdl train --epochs=1`` (default MLP on digits) as one process: its wall and CPU seconds."""
    wall, cpu, _ = spawn([sys.executable, "-m", "jdl.cli", "train", "--epochs=1", "--progress=false",
                          f"--workdir={tempfile.mkdtemp(dir=workdir)}", f"--compilation_cache={cache or 'none'}"],
                         {"PYTHONPATH": pythonpath, "JAX_PLATFORMS": "cpu"})
    return {"total": (wall, cpu)}


def configure(workdir: str) -> dict:
    """Every workload's options (shared weights written once, untimed), by a separate process."""
    code = ("import json, sys, importlib; out = {}\n"
            f"for n in {WORKLOADS!r}:\n"
            "    out[n] = importlib.import_module('benchmarks.workloads.' + n).configure(True, 0, sys.argv[1])['options']\n"
            "print(json.dumps(out))")
    _, _, out = spawn([sys.executable, "-c", code, workdir], {"PYTHONPATH": REPO, "JAX_PLATFORMS": "cpu"})
    return json.loads(out.strip().splitlines()[-1])


def plan(baseline: str | None) -> list[tuple[str, str, str, bool]]:
    """The runs of one round: (workload or 'jdl train', implementation label, PYTHONPATH, cached)."""
    jdls = [("jdl", REPO)] + ([("jdl (base)", f"{baseline}{os.pathsep}{REPO}")] if baseline else [])
    runs = []
    for w in WORKLOADS:
        for label, path in jdls + [("flax", REPO)]:
            runs += [(w, label, path, False)] + ([(w, label, path, True)] if label != "jdl (base)" else [])
        runs.append((w, "torch", REPO, False))
    for label, path in jdls:
        runs += [("jdl train", label, path, False)] + ([("jdl train", label, path, True)] if label == "jdl" else [])
    return runs


def measure(rounds: int, baseline: str | None) -> dict:
    """Warm every cache once (untimed), then ``rounds`` rounds of every run, the order rotated
    and reversed between rounds; {run name: [result per round]}."""
    workdir = tempfile.mkdtemp(prefix="startup-")
    options = configure(workdir)
    runs = plan(baseline)
    caches = {(w, label): os.path.join(workdir, "cache", f"{w}-{label}".replace(" ", "_"))
              for w, label, _, cached in runs if cached}

    def one(w, label, path, cached):
        cache = caches[(w, label)] if cached else None
        impl = label.split()[0]
        if w == "jdl train":
            return run_train(path, cache, workdir)
        return run_workload(w, impl, options[w], path, cache)

    for run in runs:
        if run[3]:
            one(*run)
    results = {}
    for r in range(rounds):
        order = runs[r % len(runs):] + runs[:r % len(runs)]
        for run in (order if r % 2 == 0 else order[::-1]):
            name = f"{run[0]}|{run[1]}|{'cached' if run[3] else 'cold'}"
            results.setdefault(name, []).append(one(*run))
            print(name, {k: f"{v[0]:.2f}/{v[1]:.2f}" for k, v in results[name][-1].items()}, flush=True)
    return results


def phases(result: dict) -> dict:
    """Per-phase seconds (wall, CPU) from the marks: each phase's end minus the previous one's."""
    out, prev = {}, (0.0, 0.0)
    for p in PHASES:
        if p in result:
            out[p] = (result[p][0] - prev[0], result[p][1] - prev[1])
            prev = result[p]
    out["total"] = result["total"]
    return out


def table(results: dict) -> str:
    """Markdown table of medians over rounds: phases in wall s, total wall and CPU s."""
    lines = ["| workload | implementation | cache | imports s | init s | first step s | total s | total CPU s |",
             "|---|---|---|---|---|---|---|---|"]
    for name, rs in results.items():
        w, label, mode = name.split("|")
        ps = [phases(r) for r in rs]

        def med(p, i=0):
            return f"{statistics.median(x[p][i] for x in ps):.2f}" if p in ps[0] else "—"

        lines.append(f"| {w} | {label} | {mode} | {med('imports')} | {med('init')} | {med('step')} | "
                     f"{med('total')} | {med('total', 1)} |")
    return "\n".join(lines)


BEGIN, END = "<!-- startup: begin -->", "<!-- startup: end -->"


def section(results: dict, rounds: int, command: str, load: tuple) -> str:
    """The startup section of docs/benchmarks.md, between the markers ``report.py`` keeps."""
    return "\n".join([
        BEGIN, "## Startup: process start to the first finished training step", "",
        f"_Written by `benchmarks/startup.py`; `benchmarks/report.py` keeps this section._ Command: `{command}`; "
        f"medians of {rounds} rounds, fresh processes, runs alternated; load average at start "
        f"{', '.join(f'{x:.1f}' for x in load)} on {os.cpu_count()} cores (other processes shared the CPUs: "
        "wall times are inflated; compare within the table).", "",
        "imports = interpreter start and the imports; init = the model's init (jdl `init_train_state`, flax "
        "`module.init`, PyTorch module construction); first step = trace, compile and run one training step. "
        "cached = JAX's persistent compilation cache, filled by an untimed run first. `jdl train` is "
        "`jdl train --epochs=1` (MLP on digits, one epoch, evaluation and checkpoint included) as a whole. "
        "PyTorch runs eagerly (nothing to cache).", "",
        table(results), END, ""])


def splice(page: str, text: str) -> None:
    """Replace the startup section of ``page`` (or append it)."""
    body = open(page).read() if os.path.exists(page) else ""
    if BEGIN in body:
        body = body[:body.index(BEGIN)] + body[body.index(END) + len(END):].lstrip("\n")
    with open(page, "w") as f:
        f.write(body.rstrip("\n") + "\n\n" + text)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], sys.argv[3], json.loads(sys.argv[4]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default=None, help="folder holding another copy of the jdl package")
    parser.add_argument("--out", default="runs/startup")
    parser.add_argument("--docs", default=None, help="splice the table into <docs>/benchmarks.md")
    a = parser.parse_args()
    load = os.getloadavg()
    results = measure(a.rounds, a.baseline)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "startup.json"), "w") as f:
        json.dump({"results": results, "load_average": load, "rounds": a.rounds}, f)
    command = "python -m benchmarks.startup " + " ".join(sys.argv[1:])
    text = section(results, a.rounds, command, load)
    print(text)
    if a.docs:
        splice(os.path.join(a.docs, "benchmarks.md"), text)


if __name__ == "__main__":
    main()
