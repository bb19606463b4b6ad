"""``jdl train --model=vae|gan|ddpm`` on digits: through the command line (vae), through
``train_command`` (vae, gan) and ``run_generative`` (ddpm, with a short schedule), an epoch or two each; the files are there, the metrics are the ones
each model reports and agree with each other, and the loss fell."""

import json
import subprocess
import sys

import numpy as np
import pytest
from absl import app
from matplotlib.image import imread

from jdl.cli.config import TrainConfig
from jdl.cli.train import train_command
from jdl.cli.train_generative import CURVES, Settings, build, check_config, load_images, run_generative

JDL = [sys.executable, "-m", "jdl.cli"]


def records(workdir):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def _train(tmp_path, model, **kw):
    config = TrainConfig(model=model, epochs=2, batch_size=64, progress=False, checkpoint_every=0,
                         workdir=str(tmp_path), **kw)
    result, workdir = train_command(config)
    return result, records(tmp_path)


def test_jdl_train_vae_from_the_command_line(tmp_path):
    r = subprocess.run([*JDL, "train", "--model=vae", "--hidden=32", "--epochs=1", "--progress=false",
                        "--checkpoint_every=0", f"--workdir={tmp_path}"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "vae on digits: test elbo" in r.stdout and "test loss" in r.stdout
    assert json.loads((tmp_path / "summary.json").read_text())["config"]["model"] == "vae"
    assert (tmp_path / "samples_epoch001.png").exists() and len(records(tmp_path)) == 1


def test_ddpm_unet_on_digits_lowers_the_loss_and_writes_a_grid_per_epoch(tmp_path):
    """The U-Net (one level of 8 channels here) starts at ε̂ = 0, loss E‖ε‖²/D = 1; two epochs
    bring the training, validation and test losses down."""
    config = TrainConfig(model="ddpm", hidden=(8,), epochs=2, batch_size=64, progress=False, checkpoint_every=0,
                         workdir=str(tmp_path))
    result, _ = run_generative(config, Settings(T=50, ddim_steps=10, n_grid=16))
    rec = records(tmp_path)
    assert [e["epoch"] for e in rec] == [1, 2] and rec[-1]["step"] == 2 * (1293 // 64)
    assert rec[1]["train_loss"] < rec[0]["train_loss"] < 1.0 and rec[1]["validation_loss"] < 0.9
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["test"]["loss"] == pytest.approx(result.test["loss"]) and result.test["loss"] < 0.9
    for e in (1, 2):
        assert (tmp_path / f"samples_epoch{e:03d}.png").stat().st_size > 0
    assert (tmp_path / "curves.png").exists()


def test_vae_reports_the_validation_elbo_and_it_rises(tmp_path):
    result, rec = _train(tmp_path, "vae", hidden=(64,))
    first, last = rec
    for e in rec:  # −ELBO = reconstruction + KL, per example, on the same draw of z
        assert e["validation_elbo"] == pytest.approx(-(e["validation_reconstruction"] + e["validation_kl"]), rel=1e-5)
        assert e["validation_loss"] == pytest.approx(-e["validation_elbo"], rel=1e-6)
        assert e["train_loss"] == pytest.approx(e["train_reconstruction"] + e["train_kl"], rel=1e-5)
    assert last["validation_elbo"] > first["validation_elbo"] and last["train_loss"] < first["train_loss"]
    assert set(result.test) == {"loss", "elbo", "reconstruction", "kl"}
    assert (tmp_path / "samples_epoch002.png").exists()


def test_gan_trains_both_players_in_one_state(tmp_path):
    result, rec = _train(tmp_path, "gan", hidden=(64,), learning_rate=2e-4)
    for e in rec:
        assert {"train_d_loss", "train_g_loss", "train_d_real", "train_d_fake", "validation_d_real"} <= set(e)
        assert 0 < e["validation_d_real"] < 1 and 0 < e["validation_d_fake"] < 1
    assert set(result.train_state.params) == {"generator", "discriminator"}
    assert int(result.train_state.step) == 2 * (1293 // 64)
    assert (tmp_path / "samples_epoch001.png").exists() and (tmp_path / "summary.json").exists()
    assert {m for panel in CURVES["gan"] for m in panel} == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert coloured_pixels(tmp_path / "curves.png") > 500  # the lines (axes and text are grey)


def coloured_pixels(path) -> int:
    """How many pixels of a PNG are saturated colour (max − min channel > 0.3): curves, not axes."""
    rgb = imread(path)[..., :3]
    return int(np.sum(rgb.max(-1) - rgb.min(-1) > 0.3))


def test_generative_models_refuse_what_they_do_not_read():
    with pytest.raises(app.UsageError, match=r"--model=vae does not take --dropout=0.5, --augment=True"):
        check_config(TrainConfig(model="vae", augment=True, dropout=0.5))
    with pytest.raises(app.UsageError, match=r"--model=gan needs images \(H, W, C\) with pixels in \[0, 1\]"):
        load_images(TrainConfig(model="gan", dataset="moons"))
    with pytest.raises(app.UsageError, match=r"--model=ddpm --hidden=8,8,8,8,8: UNet: H=8 and W=8 must be divisible"):
        build(TrainConfig(model="ddpm", hidden=(8,) * 5), Settings(), (8, 8, 1), None)
