"""experiments/diffusion_unet.py in --quick mode: it runs, writes results.json and the grid,
and its ratios are the square roots of the MMD² ratios it records."""

import json

from experiments import diffusion_unet


def test_diffusion_unet_quick(tmp_path):
    r = diffusion_unet.run(str(tmp_path), quick=True, schedules=("cosine",))
    run = r["runs"]["cosine"]
    assert set(run["samplers"]) == {"ancestral", "ddim_5", "ddim_5_clip"}
    assert all(v["mmd_ratio"] > 0 for v in run["samplers"].values())
    assert 0 < run["final_loss"] < 1.1 and len(run["losses"]) == diffusion_unet.QUICK.steps // 10
    assert json.loads((tmp_path / "results.json").read_text())["param_count"] == r["param_count"] > 0
    assert (tmp_path / "samples.png").exists()
