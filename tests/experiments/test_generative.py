"""The one-yardstick experiment in --quick mode: every model and control gets a row with the
three read-outs, the VAE its two bounds, and the yardstick ranks real digits above noise."""

import json
import math

import pytest

from experiments import generative


def test_quick_run_scores_every_model_and_control(tmp_path):
    r = generative.run(str(tmp_path), quick=True)
    rows = r["rows"]
    assert set(rows) == {"ae", "vae_2d", "gan", "ddpm", "ddim_10", "real", "pixel_gaussian", "noise"}
    for name, row in rows.items():
        assert {"fid", "confidence", "label_entropy"} <= set(row), name
        assert 0.1 < row["confidence"] <= 1 and 0 <= row["label_entropy"] <= math.log(10) + 1e-9
    assert all(rows[m]["seconds"] > 0 for m in ("ae", "vae_2d", "gan", "ddpm"))
    # the importance-weighted bound is tighter: its NLL is below −ELBO
    nll = rows["vae_2d"]["nll"]
    assert 0 < nll[f"iw_k{generative.QUICK.iw_k}"] < nll["elbo"] < 64 * math.log(2) + 5
    # the yardstick itself: real digits are far closer to the test digits than noise is
    assert rows["real"]["fid"] < 0.2 * rows["noise"]["fid"]
    assert rows["real"]["confidence"] > rows["noise"]["confidence"]
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved) >= {"config", "rows", "judge", "real_fid_draws", "n_samples"}
    terms = saved["rows"]["ddpm"]["bound_terms"]  # a bound on −log P of 64 pixels of 17 levels
    assert terms["total"] == pytest.approx(terms["prior"] + terms["diffusion"] + terms["decoder"], rel=1e-5)
    assert 0 < terms["total"] == saved["rows"]["ddpm"]["nll"]["bound"]
    assert saved["n_samples"] == generative.QUICK.n_samples and saved["judge"]["test_accuracy"] > 0.5
    assert (tmp_path / "samples.png").exists() and "| real training digits |" in (tmp_path / "table.md").read_text()


def test_unknown_model():
    with pytest.raises(ValueError, match=r"generative: unknown models \['vae_3d'\]"):
        generative.run("/tmp/unused", quick=True, models="ae,vae_3d")
