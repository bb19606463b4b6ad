"""The one-pass form of the updates (jdl.optim.onepass): with XLA:CPU's multi-output fusion on,
a jitted, donated Adam or SGD-momentum step is one loop per leaf that reads g, m, v, θ once
and writes m, v, θ once (counted in the compiled HLO, and in XLA's bytes), every output aliased
to its donated input, and the steps equal optax's. The flag is process-wide and read when the
backend starts, so that half runs in a fresh process."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from jdl import optim
from jdl.optim import onepass
from jdl.runtime import MULTI_OUTPUT_FUSION, with_multi_output_fusion

SHAPES = [(3000,), (200, 30), (70,)]  # distinct sizes, so that each leaf's loops can be counted

PROBE = r"""
import json, re, sys
from jdl.runtime import multi_output_fusion
fused = multi_output_fusion()  # before anything starts the backend
import jax, jax.numpy as jnp, numpy as np, optax
from jdl import optim

SHAPES = %r
OPTS = {
    "adam": (optim.adam(1e-2), optax.adam(1e-2)),
    "adamw": (optim.adamw(1e-2, weight_decay=0.1), optax.adamw(1e-2, weight_decay=0.1)),
    "adam_bf16_mu": (optim.adam(1e-2, mu_dtype=jnp.bfloat16), optax.adam(1e-2, mu_dtype=jnp.bfloat16)),
    "clip_adam": (optim.chain(optim.clip_by_global_norm(1.0), optim.adam(1e-2)),
                  optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2))),
    "sgd_momentum": (optim.sgd(1e-2, momentum=0.9), optax.sgd(1e-2, momentum=0.9)),
    "sgd_nesterov": (optim.sgd(1e-2, momentum=0.9, nesterov=True), optax.sgd(1e-2, momentum=0.9, nesterov=True)),
}


def loops(text, shape):
    n = int(np.prod(shape))
    array = r"f32\[%%s\]" %% ",".join(map(str, shape))
    return len(re.findall(r"= (?:\([^)]*%%s[^)]*\)|%%s\S*) (?:fusion|copy)\(" %% (array, array), text))


rng = np.random.default_rng(0)
params = {f"p{i}": jnp.asarray(rng.normal(size=s), jnp.float32) for i, s in enumerate(SHAPES)}
grads = [jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params) for _ in range(5)]
out = {"fused": fused}
for name, (ours, theirs) in OPTS.items():
    row = {}
    for lib, opt, apply in (("jdl", ours, optim.apply_updates), ("optax", theirs, optax.apply_updates)):
        def step(p, s, g, opt=opt, apply=apply):
            u, s = opt.update(g, s, p)
            return apply(p, u), s
        step = jax.jit(step, donate_argnums=(0, 1))
        p = jax.tree.map(jnp.copy, params)
        s = opt.init(p)
        compiled = step.lower(p, s, grads[0]).compile()
        if lib == "jdl":
            text = compiled.as_text()
            row["loops"] = [loops(text, shape) for shape in SHAPES]
            row["aliased"] = text.split("input_output_alias=")[1].split("entry_computation_layout")[0].count("may-alias")
            row["outputs"] = len(jax.tree.leaves((p, s)))
            cost = compiled.cost_analysis()
            row["bytes_per_param"] = (cost[0] if isinstance(cost, list) else cost)["bytes accessed"] / sum(
                int(np.prod(s)) for s in SHAPES)
        for g in grads:
            p, s = step(p, s, g)
        row[lib] = [np.asarray(p[k]).tolist() for k in sorted(p)]
    # the largest |jdl - optax| beyond the tests' usual rtol=1e-6, in units of their atol=1e-6
    row["excess"] = max(float(np.max(np.abs(np.subtract(a, b)) - 1e-6 * np.abs(b))) / 1e-6
                        for a, b in zip(row.pop("jdl"), row.pop("optax")))
    out[name] = row
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def fused_run():
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    env["PYTHONPATH"] = os.getcwd() + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", PROBE % (SHAPES,)], capture_output=True, text=True,
                          env=env, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, proc.stderr[-2000:]
    return json.loads(lines[0][len("RESULT "):])


def test_multi_output_fusion_takes_effect_in_a_fresh_process(fused_run):
    assert fused_run["fused"] is True


@pytest.mark.parametrize("name", ["adam", "adamw", "adam_bf16_mu", "clip_adam", "sgd_momentum", "sgd_nesterov"])
def test_one_loop_per_leaf_aliased_and_equal_to_optax(fused_run, name):
    row = fused_run[name]
    if name != "clip_adam":  # clipping adds its own loops (g², the clipped g) before Adam's
        assert row["loops"] == [1] * len(SHAPES), row  # one 4-in/3-out (or 3-in/2-out) loop per leaf
    assert row["aliased"] == row["outputs"], row  # every param and state buffer updated in place
    assert row["excess"] <= 1, row  # allclose(rtol=1e-6, atol=1e-6), as tests/optim/test_equal_optax


def test_bytes_at_the_floor(fused_run):
    """Adam reads g, m, v, θ and writes m, v, θ: 7 × 4 B/param; SGD-momentum 5 × 4."""
    assert fused_run["adam"]["bytes_per_param"] == pytest.approx(28, abs=0.2)
    assert fused_run["sgd_momentum"]["bytes_per_param"] == pytest.approx(20, abs=0.2)


def test_this_process_takes_the_form_its_flags_allow():
    """Without the flag XLA:CPU would copy the old moments for a recomputation: plain form."""
    flagged = MULTI_OUTPUT_FUSION in os.environ.get("XLA_FLAGS", "")
    assert onepass.fuses_one_pass(jax.default_backend()) == (flagged or jax.default_backend() != "cpu")


def test_eager_updates_take_the_plain_form():
    g = {"w": jnp.ones(3)}
    assert not onepass.one_pass(g)
    assert onepass.one_pass({}) is False
    u, _ = optim.adam(0.1).update(g, optim.adam(0.1).init(g))
    assert jnp.allclose(u["w"], -0.1, rtol=1e-4)  # first Adam step: −η·g/|g| (β rounded to float32)


def test_opaque_keeps_values():
    tree = {"a": jnp.arange(4.0), "b": None, "c": jnp.array([1 + 2j], jnp.complex64)}
    out = jax.jit(onepass.opaque)(tree)
    assert out["b"] is None
    assert jnp.array_equal(out["a"], tree["a"]) and jnp.array_equal(out["c"], tree["c"])


@pytest.mark.parametrize("flags, expected", [
    ("", f"--xla_backend_extra_options={MULTI_OUTPUT_FUSION}"),
    ("--xla_cpu_multi_thread_eigen=false x=1", f"--xla_backend_extra_options={MULTI_OUTPUT_FUSION} --xla_cpu_multi_thread_eigen=false x=1"),
    ("--xla_backend_extra_options=a=1", f"--xla_backend_extra_options=a=1,{MULTI_OUTPUT_FUSION}"),
    (f"--xla_backend_extra_options={MULTI_OUTPUT_FUSION}", f"--xla_backend_extra_options={MULTI_OUTPUT_FUSION}"),
])
def test_with_multi_output_fusion_merges_into_existing_flags(flags, expected):
    assert with_multi_output_fusion(flags) == expected


def test_multi_output_fusion_is_read_before_a_word_without_dashes():
    """XLA ignores the flags after a positional word: the option must come before it."""
    env = dict(os.environ, XLA_FLAGS=with_multi_output_fusion("--xla_cpu_multi_thread_eigen=false x=1"))
    env["PYTHONPATH"] = os.getcwd() + os.pathsep + env.get("PYTHONPATH", "")
    code = "import jax; from jdl.optim.onepass import fuses_one_pass; print(fuses_one_pass(jax.default_backend()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.strip() == "True", out.stderr[-1000:]
