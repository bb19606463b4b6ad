import json

import pytest

from experiments import autoencoders


def test_quick_run_writes_the_table_and_plots(tmp_path):
    r = autoencoders.run(str(tmp_path), quick=True, models="vae_2d", epochs=1)
    assert set(r) >= {"pca", "vae_2d"}
    # PCA's 2-D reconstruction of 0..1 pixels is far better than the per-pixel variance (≈0.19 of 1)
    assert 0.02 < r["pca"]["reconstruction_mse"] < 0.08
    v = r["vae_2d"]
    # the bounds are ordered: ELBO ≤ IW bound, both a few tens of nats for 64 pixels
    assert -64 * 0.6932 - 5 < v["elbo"] < v["iw_log_px"] < 0
    assert v["kl"] >= 0 and v["iw_k"] == autoencoders.K_IW_QUICK
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["vae_2d"]["beta"] == 1.0
    for name in ("latent_by_class", "vae_samples", "reconstructions", "latent_traversal"):
        assert (tmp_path / f"{name}.png").exists()


def test_unknown_model():
    with pytest.raises(ValueError, match=r"autoencoders: unknown models \['gan'\]"):
        autoencoders.run("/tmp/unused", quick=True, models="gan")
