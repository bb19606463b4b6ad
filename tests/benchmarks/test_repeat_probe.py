"""The repeat probe: returning the gradient as its own output takes the stacked weight
gradients out of XLA's temporaries (the measured effect in benchmarks/NOTES.md)."""

from benchmarks import repeat_probe


def test_keeping_the_gradient_shrinks_the_temporaries_of_repeat():
    common = ["--kind=repeat", "--layers=3", "--width=16", "--steps=2"]
    plain = repeat_probe.main(common)
    kept = repeat_probe.main(common + ["--keep_grads"])
    # the stacked dW of both Dense layers: 3 · (16·32 + 32·16) floats = 12 KiB leave the temporaries
    assert plain["temp_mib"] - kept["temp_mib"] >= 3 * 2 * 16 * 32 * 4 / 2 ** 20 * 0.99
    assert kept["step_ms"] > 0 and plain["step_ms"] > 0
