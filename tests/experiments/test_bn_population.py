from experiments import bn_population


def test_quick_run_recomputed_statistics_beat_the_lagging_running_averages(tmp_path):
    r = bn_population.run(str(tmp_path), quick=True)
    m = r["mean"]
    assert len(m["running_accuracy"]) == 1
    assert m["population_accuracy"][0] > m["running_accuracy"][0] + 0.05  # after 20 steps 0.99^20 = 0.82 of the init remains
    assert m["mean_gap"][0] > 0.1
    assert (tmp_path / "results.json").exists() and (tmp_path / "bn_population.png").exists()
