"""The diffusion and GAN experiments in --quick mode: they run, write their results and plots,
and their numbers are consistent with what they claim to measure."""

import json

import numpy as np

from experiments import diffusion, gan


def test_diffusion_quick_on_moons(tmp_path):
    r = diffusion.run(str(tmp_path), quick=True, sets=("moons",), schedules=("cosine",))
    moons = r["runs"]["moons"]
    assert moons["data_mmd2"] > 0 and set(moons["controls"]) == {"gaussian_fit", "blurred_data"}
    for sched in ("cosine",):
        ev = moons[sched]["samplers"]
        assert set(ev) == {"ancestral", "ddim_10"}
        for v in ev.values():  # the ratio is the square root of the MMD² ratio
            np.testing.assert_allclose(v["mmd_ratio"], np.sqrt(v["mmd2"] / moons["data_mmd2"]), rtol=1e-6)
        assert moons[sched]["final_loss"] < 1.0  # below the loss of predicting ε̂ = 0, E‖ε‖²/D = 1
    assert json.loads((tmp_path / "results.json").read_text())["config"]["T"] == diffusion.QUICK.T
    assert (tmp_path / "samples.png").exists() and (tmp_path / "mmd_vs_steps.png").exists()


def test_gan_quick_trains_both_losses(tmp_path):
    r = gan.run(str(tmp_path), quick=True)
    probe = r["saturation_probe"]  # 20 steps of D alone already make it confident
    assert probe["after_d_steps"]["d_fake"] < probe["at_init"]["d_fake"]
    g = probe["after_d_steps"]["grad_norm"]
    assert g["non_saturating"] > g["minimax"]
    for loss in gan.LOSSES:
        run = r["runs"][loss]
        assert len(run["history"]) == gan.QUICK.epochs and run["steps"] == gan.QUICK.epochs * (1437 // 64)
        assert all(0 < e["d_real"] < 1 and 0 < e["d_fake"] < 1 for e in run["history"])
    # the minimax generator loss is log(1 − D) ≤ 0, the non-saturating one −log D ≥ 0
    assert all(e["g_loss"] < 0 for e in r["runs"]["minimax"]["history"])
    assert all(e["g_loss"] > 0 for e in r["runs"]["non_saturating"]["history"])
    assert (tmp_path / "grids.png").exists() and (tmp_path / "losses.png").exists()
