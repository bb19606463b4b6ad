"""jdl.runtime.keep_host_memory: the same values, and XLA's large per-call temporaries stop
page-faulting (counted with getrusage, in a fresh process: the setting is process-wide)."""

import json
import subprocess
import sys

import pytest

PROBE = r"""
import json, resource, sys
import jax, jax.numpy as jnp
if sys.argv[1] == "keep":
    from jdl.runtime import keep_host_memory
    applied = keep_host_memory()
    assert applied.synchronous and applied.malloc_tuned, applied

def loss(w, x):  # 24 tanh layers: backward keeps 24 (2048, 256) activations, 48 MiB
    for _ in range(24):
        x = jnp.tanh(x @ w)
    return jnp.sum(x ** 2)

grad = jax.jit(jax.grad(loss))
w = jax.random.normal(jax.random.key(0), (256, 256)) / 16
x = jax.random.normal(jax.random.key(1), (2048, 256))
temp = grad.lower(w, x).compile().memory_analysis().temp_size_in_bytes
for _ in range(3):
    g = grad(w, x).block_until_ready()
faults = []
for _ in range(9):  # per call: the fewest, as the heap may still move a block now and then
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    g = grad(w, x).block_until_ready()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
faults = min(faults)
print("RESULT", json.dumps({"temp": temp, "faults": faults, "g": [float(g.sum()), float(abs(g).max())]}))
"""


def run(mode: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                          env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin",
                               "PYTHONPATH": ":".join(sys.path)}, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, proc.stderr[-2000:]
    return json.loads(lines[0][len("RESULT "):])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_keep_host_memory_removes_the_page_faults_and_changes_no_value():
    plain, kept = run("plain"), run("keep")
    assert plain["temp"] > 40 * 2**20  # past glibc's 32 MiB mmap ceiling, so it is mmapped per call
    pages = plain["temp"] / 4096
    assert plain["faults"] > 0.5 * pages  # even the call that faults least maps its temporaries anew
    assert kept["faults"] < 0.05 * pages  # kept in the heap: a call reuses pages an earlier one touched
    assert kept["g"] == plain["g"]  # bit for bit: only where memory comes from changed


def test_keep_host_memory_after_the_backend_started_says_dispatch_stayed_asynchronous():
    code = ("import jax, jax.numpy as jnp; jnp.ones(2).block_until_ready(); "
            "from jdl.runtime import keep_host_memory; r = keep_host_memory(); "
            "print('RESULT', r.synchronous, 'asynchronous' in r.reason, jax.config.read('jax_cpu_enable_async_dispatch'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)})
    assert "RESULT False True True" in proc.stdout, proc.stderr[-2000:]
