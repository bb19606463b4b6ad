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
