"""Run by test_checkpoint.py as a subprocess:  python tests/train/sharded_worker.py DIR save|restore

With as many CPU devices as XLA_FLAGS gives it, builds a TrainState whose leaves are replicated
with NamedSharding(mesh, P()) over all devices, then either saves it as step 5 of DIR or restores
step 5 into it and checks that every leaf has the target leaf's sharding and the saved values.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import jdl
from jdl.train import checkpoint as ckpt
from jdl.train import init_train_state


def main(directory: str, mode: str) -> None:
    mesh = Mesh(np.array(jax.devices()), ("data",))
    replicated = NamedSharding(mesh, PartitionSpec())
    ts = init_train_state(jdl.models.mlp([8, 3]), jdl.optim.adam(1e-3), jax.ShapeDtypeStruct((4, 5), jnp.float32), 0)
    ts = jax.device_put(ts._replace(step=jnp.asarray(5, jnp.int32)), replicated)
    if mode == "save":
        ckpt.save(directory, ts, {"devices": len(jax.devices())})
        print(f"saved from {len(jax.devices())} devices")
        return
    fresh = jax.device_put(init_train_state(jdl.models.mlp([8, 3]), jdl.optim.adam(1e-3),
                                            jax.ShapeDtypeStruct((4, 5), jnp.float32), 1), replicated)
    back = ckpt.restore(directory, fresh)
    data = lambda x: jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x  # noqa: E731
    for got, want in zip(jax.tree.leaves(back.train_state), jax.tree.leaves(ts)):
        if got.sharding != replicated:
            raise SystemExit(f"restored leaf has sharding {got.sharding}, not {replicated}")
        np.testing.assert_array_equal(np.asarray(data(got)), np.asarray(data(want)))
    print(f"restored on {len(jax.devices())} devices from {back.meta['devices']}")


if __name__ == "__main__":
    main(*sys.argv[1:])
