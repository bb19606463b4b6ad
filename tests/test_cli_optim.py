"""`jdl train --optimizer/--schedule/--momentum`: every optimizer and schedule builds and steps, the
CLI's optimizer is the library's, and bad combinations are refused with a clear message."""

import json

import jax
import jax.numpy as jnp
import pytest
from absl import app

from jdl import cli, optim
from tests.helpers import assert_close

PARAMS = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}
GRADS = {"w": jnp.full((3, 2), 0.5), "b": jnp.ones(2)}


def two_steps(opt):
    state = opt.init(PARAMS)
    params = PARAMS
    for _ in range(2):
        u, state = opt.update(GRADS, state, params)
        params = optim.apply_updates(params, u)
    return params


@pytest.mark.parametrize("name", cli.OPTIMIZERS)
def test_every_optimizer_uses_its_default_learning_rate(name):
    lr = cli.DEFAULT_LEARNING_RATES[name]
    expected = (optim.momentum_ema(lr, 0.9) if name == "momentum_ema" else getattr(optim, name)(lr))
    assert_close(two_steps(cli.build_optimizer(name)), two_steps(expected))


def test_momentum_and_nesterov_reach_sgd():
    assert_close(two_steps(cli.build_optimizer("sgd", 0.1, 0.9, True)),
                 two_steps(optim.sgd(0.1, momentum=0.9, nesterov=True)))


@pytest.mark.parametrize("name, at_100", [
    ("constant", 0.1), ("exponential", 0.1 * 0.5 ** (100 / 50)), ("step", 0.1 * 0.5 ** 2),
    ("inverse_time", 0.1 / (1 + 0.5 * 100 / 50)), ("cosine", 0.1 * 0.5 * (1 + jnp.cos(jnp.pi / 2))),
    ("warmup_cosine", 0.1 * 0.5 * (1 + jnp.cos(jnp.pi * 90 / 190))),
])
def test_schedules_over_200_steps(name, at_100):
    lr = cli.build_schedule(name, 0.1, total_steps=200, decay_rate=0.5, decay_steps=50, warmup_steps=10)
    value = lr if name == "constant" else float(jax.jit(lr)(jnp.int32(100)))
    assert abs(value - at_100) < 1e-7


@pytest.mark.parametrize("args, message", [
    (("adam", None, 0.9), "--momentum/--nesterov apply to sgd, rmsprop and momentum_ema"),
    (("sgd", None, None, True), "--nesterov needs --momentum"),
    (("nope",), "--optimizer='nope': valid choices are sgd, momentum_ema"),
])
def test_bad_combinations_are_refused(args, message):
    with pytest.raises(app.UsageError, match=message):
        cli.build_optimizer(*args)


def test_train_with_momentum_and_schedule_records_config(tmp_path):
    """In-process (a subprocess costs seconds of imports); the flags are unparsed afterwards."""
    cli.FLAGS(["jdl", "--epochs=1", "--dataset=moons", "--hidden=8", "--progress=false", "--optimizer=sgd", "--momentum=0.9", "--nesterov",
               "--schedule=warmup_cosine", f"--workdir={tmp_path}"])
    try:
        config = cli.TrainConfig.from_flags(cli.FLAGS)
    finally:
        cli.FLAGS.unparse_flags()
    result, workdir = cli.train_command(config)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert workdir == str(tmp_path) and summary["final"] == result.history[-1]
    config = summary["config"]
    assert (config["optimizer"], config["learning_rate"], config["momentum"], config["schedule"]) == \
        ("sgd", 0.1, 0.9, "warmup_cosine")
    assert summary["final"]["train_accuracy"] > 0.5


@pytest.mark.parametrize("name, momentum, nesterov, reference", [
    ("adam", None, False, optim.adam(1e-3)),
    ("adamw", None, False, optim.adamw(1e-3)),
    ("sgd", 0.9, True, optim.sgd(0.1, momentum=0.9, nesterov=True)),
])
def test_fused_optimizer_is_the_same_update(name, momentum, nesterov, reference):
    """``--fused_optimizer`` builds ``jdl.optim.fused_*``, whose update is the plain one's (the
    native step itself is tested against optax in tests/kernels/test_optim_native.py)."""
    fused = cli.build_optimizer(name, None, momentum, nesterov, fused=True)
    assert isinstance(fused, optim.FusedTransformation)
    assert_close(two_steps(fused), two_steps(reference))


@pytest.mark.parametrize("flags, message", [
    (["--optimizer=rmsprop"], "--fused_optimizer takes --optimizer=adam, adamw, or sgd with --momentum, not --optimizer=rmsprop"),
    (["--optimizer=sgd"], "not --optimizer=sgd without --momentum"),
    (["--weight_decay=0.01"], "--fused_optimizer does not apply --weight_decay=0.01"),
    (["--fsdp"], "drop it or --fsdp, which shards them"),
])
def test_fused_optimizer_refusals(flags, message):
    cli.FLAGS(["jdl", "--fused_optimizer", *flags])
    try:
        with pytest.raises(app.UsageError, match=message):
            cli.config.check(cli.TrainConfig.from_flags(cli.FLAGS))
    finally:
        cli.FLAGS.unparse_flags()


def test_train_with_fused_optimizer_matches_the_plain_run(tmp_path):
    """``jdl train --fused_optimizer`` (in-process) trains as the plain Adam run, epoch for epoch."""
    pytest.importorskip("jdl.kernels.native").load()
    histories = []
    for fused in (False, True):
        cli.FLAGS(["jdl", "--epochs=2", "--dataset=moons", "--hidden=8", "--progress=false", "--checkpoint_every=0",
                   f"--fused_optimizer={fused}", f"--workdir={tmp_path / str(fused)}"])
        try:
            config = cli.TrainConfig.from_flags(cli.FLAGS)
        finally:
            cli.FLAGS.unparse_flags()
        histories.append(cli.train_command(config)[0].history)
    summary = json.loads((tmp_path / "True" / "summary.json").read_text())
    assert summary["config"]["fused_optimizer"] is True
    for plain, fused in zip(*histories):
        assert abs(plain["train_loss"] - fused["train_loss"]) < 1e-5 * max(1.0, abs(plain["train_loss"]))
        assert abs(plain["validation_loss"] - fused["validation_loss"]) < 1e-5 * max(1.0, abs(plain["validation_loss"]))
