"""A tiny training run with checkpoints that dies on purpose, run by test_kill.py as a real
subprocess:  python tests/train/kill_worker.py WORKDIR MODE

MODE is 'none' (run to the end), or how and where to die:
  kill-record:N  SIGKILL inside the checkpoint of step N, as jdl's record is written into orbax's
                 temporary directory (the arrays are being written, the commit not done)
  kill-orbax:N   SIGKILL inside orbax's own commit of step N (all written, its rename not done)
  term-step:N    SIGTERM to itself right after step N (fit must save step N, then exit by it)
"""

import os
import signal
import sys

TMP = ".orbax-checkpoint-tmp"  # orbax writes step N into N.orbax-checkpoint-tmp-<time>, then renames it


def main(workdir: str, mode: str) -> None:
    import jax

    import jdl
    import importlib

    fit_module = importlib.import_module("jdl.train.fit")  # the module, not the function jdl.train.fit

    kind, _, at = mode.partition(":")
    me = os.getpid()
    if kind == "kill-record":
        import orbax.checkpoint as ocp

        save_json = ocp.JsonCheckpointHandler._save_fn

        async def dying_save_json(self, x, directory):
            if f"{at}{TMP}" in str(directory) and "crc32" in x:  # jdl's record, not orbax's metrics
                os.kill(me, signal.SIGKILL)
            return await save_json(self, x, directory)

        ocp.JsonCheckpointHandler._save_fn = dying_save_json
    elif kind == "kill-orbax":
        from orbax.checkpoint._src.path import atomicity

        finalize = atomicity.AtomicRenameTemporaryPath.finalize

        async def dying_finalize(self, *args, **kwargs):
            if f"{at}{TMP}" in str(self.get()):
                os.kill(me, signal.SIGKILL)
            return await finalize(self, *args, **kwargs)

        atomicity.AtomicRenameTemporaryPath.finalize = dying_finalize
    elif kind == "term-step":
        make_step = fit_module.make_step

        def make_signalling_step(*args, **kwargs):
            step = make_step(*args, **kwargs)

            def signalling_step(ts, batch):
                ts, metrics = step(ts, batch)
                if int(ts.step) == int(at):
                    os.kill(me, signal.SIGTERM)
                return ts, metrics

            return signalling_step

        fit_module.make_step = make_signalling_step

    x, y = jdl.data.load("spirals", "train")  # numpy only: no scikit-learn to import
    xt, yt = jdl.data.load("spirals", "test")
    fit_module.fit(jdl.models.mlp([16, 2]), jdl.losses.softmax_cross_entropy, jdl.optim.sgd(0.1),
                   (x[:300], y[:300]), (xt[:100], yt[:100]), epochs=3, batch_size=30, seed=1,
                   workdir=workdir, progress=False, checkpoint_every=4, keep=2, tensorboard=False,
                   augment=lambda k, xb: xb + 0.1 * jax.random.normal(k, xb.shape, xb.dtype))


if __name__ == "__main__":
    main(*sys.argv[1:])
