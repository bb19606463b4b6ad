"""The contrastive experiment in --quick mode: every encoder is trained and probed, the numbers
are consistent with what they measure, and the results and plots are written."""

import json
import math

from experiments import contrastive

NAMES = {"raw_pixels", "random_encoder", "simclr", "simclr_projection", "rotation", "supervised"}


def test_quick_run_probes_every_encoder(tmp_path):
    r = contrastive.run(str(tmp_path), quick=True)
    q = contrastive.QUICK
    (fraction,) = q.label_fractions
    probes = r["probes"][str(fraction)]
    assert set(probes) == NAMES
    for p in probes.values():  # the chosen L2 is the one with the best validation accuracy
        assert p["validation_accuracy"] == max(p["validation_accuracies"]) and 0 <= p["test_accuracy"] <= 1
    assert probes["raw_pixels"]["test_accuracy"] > 0.2  # 10 classes: chance is 0.1
    assert r["supervised"][str(fraction)]["n_labels"] == round(fraction * 1293)
    simclr = r["pretraining"]["simclr"]["history"]
    assert len(simclr) == q.simclr_epochs  # below log(2B − 1), the loss of embeddings that tell nothing apart
    assert simclr[-1]["train_loss"] < math.log(2 * q.batch - 1)
    rotation = r["pretraining"]["rotation"]["history"][-1]
    assert 0 <= rotation["train_accuracy"] <= 1 and rotation["train_loss"] > 0
    assert json.loads((tmp_path / "results.json").read_text())["config"]["batch"] == q.batch
    for name in ("features_pca", "simclr_curves", "probes"):
        assert (tmp_path / f"{name}.png").exists()
