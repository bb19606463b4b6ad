"""BatchNorm's axis_name across real devices: shard_map over 4 CPU devices (forced with
XLA_FLAGS in a subprocess, since the device count is fixed when JAX starts) gives the same output
and running statistics as one device normalizing the whole batch."""

import os
import subprocess
import sys
import textwrap

from tests.helpers import devices_xla_flags

SCRIPT = textwrap.dedent("""
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, PartitionSpec as P
    from jdl.nn import BatchNorm

    assert jax.device_count() == 4, jax.devices()
    mesh = Mesh(np.array(jax.devices()), ("data",))
    x = jax.random.normal(jax.random.key(0), (16, 5, 5, 3)) * 2.0 + 1.0
    bn_dev = BatchNorm(momentum=0.9, axis_name="data")
    bn_one = BatchNorm(momentum=0.9)
    params, state = bn_one.init(jax.random.key(1), x)
    params = {"gamma": jnp.array([0.5, 1.5, 2.0]), "beta": jnp.array([0.1, -0.2, 0.3])}

    def per_device(p, s, xs):
        return bn_dev.apply(p, s, xs, train=True)

    sharded = jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P(), P("data")),
                                    out_specs=(P("data"), P()), check_vma=False))
    y, s = sharded(params, state, x)
    y_ref, s_ref = bn_one.apply(params, state, x, train=True)
    np.testing.assert_allclose(np.asarray(y), np.asarray(y_ref), rtol=1e-5, atol=1e-5)
    for k in ("mean", "var"):
        np.testing.assert_allclose(np.asarray(s[k]), np.asarray(s_ref[k]), rtol=1e-5, atol=1e-6)
    # without axis_name each device would see only its own 4 examples: the test can fail
    y_local = jax.jit(jax.shard_map(lambda p, s, xs: bn_one.apply(p, s, xs, train=True)[0], mesh=mesh,
                                    in_specs=(P(), P(), P("data")), out_specs=P("data")))(params, state, x)
    assert float(jnp.max(jnp.abs(y_local - y_ref))) > 1e-3
    print("ok")
""")


def test_batchnorm_statistics_across_four_devices_under_shard_map():
    env = dict(os.environ, XLA_FLAGS=devices_xla_flags(4), JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-3000:]
