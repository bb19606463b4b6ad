from experiments import normalization


def test_quick_run_batchnorm_trains_faster_and_its_running_stats_lag(tmp_path):
    out = normalization.run(str(tmp_path), quick=True, models="mlp", learning_rates="0.5", norms="none,batch")
    none, batch = out["results"]["mlp"]["none"]["0.5"], out["results"]["mlp"]["batch"]["0.5"]
    assert batch["train_loss"][-1] < 0.5 * none["train_loss"][-1]  # 8 plain layers barely move at η = 0.5
    assert batch["final_test_accuracy"] > none["final_test_accuracy"] + 0.3
    # after one epoch the running averages (momentum 0.99) lag: eval mode is worse than batch statistics
    assert batch["bn_train_mode_test_accuracy"][0] > batch["test_accuracy"][0] + 0.1
    assert (tmp_path / "normalization_bn_train_eval.png").stat().st_size > 1000
