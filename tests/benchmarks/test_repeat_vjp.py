"""benchmarks/repeat_vjp.py builds the same residual stack every way it times: one Adam step of
each kind from the same inputs gives the loop's loss and the loop's updated params."""

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import repeat_vjp


def test_every_kind_takes_the_loops_step():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((8, 16), dtype=np.float32))
    y = jnp.asarray(rng.integers(0, 16, 8).astype(np.int32))
    results = {}
    for kind in ("loop", "repeat", "repeat_unroll2", "custom_vjp", "custom_vjp_residuals"):
        step, (params, opt_state) = repeat_vjp.build_step(kind, 4, 16, x, y)
        new_params, _, loss = step(params, opt_state, x, y)
        leaves = [np.asarray(a) for a in jax.tree.leaves(new_params)]
        if kind == "loop":  # serial's params: one dict per layer; stack them like repeat's
            leaves = [np.stack(ls) for ls in zip(*[jax.tree.leaves(p) for p in new_params.values()])]
        results[kind] = (float(loss), leaves)
    loss0, leaves0 = results["loop"]
    for kind, (loss, leaves) in results.items():
        np.testing.assert_allclose(loss, loss0, rtol=1e-6, err_msg=kind)
        assert len(leaves) == len(leaves0), kind
        for a, b in zip(leaves, leaves0):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=kind)


def test_main_reports_each_kinds_ratio_to_the_loop():
    out = repeat_vjp.main(["--layers=2", "--kinds=loop,repeat_unroll2", "--rounds=1", "--steps=1",
                           "--width=8"])
    rows = {r["kind"]: r for r in out["rows"]}
    assert rows["loop"]["ratio_to_loop"] == 1.0
    assert rows["repeat_unroll2"]["ratio_to_loop"] > 0
    assert out["keep_host_memory"] is False


def test_fused_adam_rows_take_the_same_step():
    """``--optimizer=fused_adam``: the loop's and the custom VJP's step with the native update
    give the plain Adam loop's params (skipped where the native kernels cannot be built)."""
    import pytest

    from jdl.kernels import native

    if not native.available():
        pytest.skip("jdl.kernels.native cannot be built here")
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((8, 16), dtype=np.float32))
    y = jnp.asarray(rng.integers(0, 16, 8).astype(np.int32))
    runs = {}
    for kind, opt in (("loop", "adam"), ("loop", "fused_adam"), ("custom_vjp", "fused_adam")):
        step, (params, opt_state) = repeat_vjp.build_step(kind, 3, 16, x, y, opt)
        new_params = step(params, opt_state, x, y)[0]
        leaves = [np.asarray(a) for a in jax.tree.leaves(new_params)]
        if kind == "loop":
            leaves = [np.stack(ls) for ls in zip(*[jax.tree.leaves(p) for p in new_params.values()])]
        runs[kind, opt] = leaves
    for key, leaves in runs.items():
        for a, b in zip(leaves, runs["loop", "adam"]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=str(key))
