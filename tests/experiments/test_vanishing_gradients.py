import numpy as np

from experiments import vanishing_gradients


def test_first_layer_gradient_vanishes_with_sigmoid_and_not_with_the_fixes(tmp_path):
    r = vanishing_gradients.run(str(tmp_path), quick=True)["variants"]
    first = {k: v["grad_norms"][0][0] for k, v in r.items()}
    # 20 sigmoid layers: the first layer's gradient is orders of magnitude below the last one's
    assert r["sigmoid"]["ratio_first_last_init"] < 1e-6
    assert r["relu"]["ratio_first_last_init"] > 1e-2 and r["tanh"]["ratio_first_last_init"] > 1e-2
    assert first["sigmoid_residual"] > 1e6 * first["sigmoid"]  # skip connections carry it back
    # exploding: every layer's gradient is thousands of times He's
    assert np.min(np.asarray(r["relu_exploding"]["grad_norms"][0]) / np.asarray(r["relu"]["grad_norms"][0])) > 1e3
    assert r["relu"]["final_loss"] < r["sigmoid"]["final_loss"]
    assert (tmp_path / "vanishing_gradients.png").exists()
