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
g = grad(w, x).block_until_ready()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    g = grad(w, x).block_until_ready()
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5
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
    assert plain["faults"] > 0.5 * pages  # each call faults its temporaries in anew
    assert kept["faults"] < 0.05 * pages  # kept in the heap: the first call's pages are reused
    assert kept["g"] == plain["g"]  # bit for bit: only where memory comes from changed
