import json

import numpy as np

from experiments import depth


def test_quick_run_records_losses_and_gradient_flow(tmp_path):
    r = depth.run(str(tmp_path), quick=True, depths="8", epochs=1)
    plain, res = r["plain"]["8"], r["residual"]["8"]
    # ResNet-8 = stem + 3 blocks + dense; the residual twin adds two 1x1 projections with BN
    assert res["params"] - plain["params"] == 8 * 16 + 2 * 16 + 16 * 32 + 2 * 32
    assert len(plain["grad_norms"]) == len(res["grad_norms"]) == 3
    assert all(np.isfinite(plain["grad_norms"])) and min(res["grad_norms"]) > 0
    assert plain["train_loss"] < np.log(10) and res["train_loss"] < np.log(10)  # both learn something
    assert json.loads((tmp_path / "results.json").read_text())["depths"] == [8]
    assert (tmp_path / "depth_gradients.png").exists()
