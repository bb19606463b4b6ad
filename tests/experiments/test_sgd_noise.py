import jax
import numpy as np

from experiments import sgd_noise


def test_the_noise_ball_scales_with_learning_rate_over_batch_size():
    """GD reaches θ*; SGD's stationary E‖θ − θ*‖² doubles with α, quarters with 4× the batch,
    and matches α·trΣ/(B(2 − α)) for H = I (the closed form of a linear SGD recursion)."""
    x, y, theta_star = sgd_noise.make_problem(jax.random.key(0), n=400, d=3)
    settings = [(0.05, None), (0.02, 1), (0.04, 1), (0.04, 4)]
    ball = sgd_noise.noise_ball(jax.random.key(1), x, y, theta_star, settings, steps=2000, chains=32)
    gd, a, b, c = (ball[k]["level"] for k in ("lr=0.05,B=all", "lr=0.02,B=1", "lr=0.04,B=1", "lr=0.04,B=4"))
    assert gd < 1e-8
    np.testing.assert_allclose(b / a, 2.0 * (2 - 0.02) / (2 - 0.04), rtol=0.2)
    np.testing.assert_allclose(b / c, 4.0, rtol=0.25)
    for k in ("lr=0.02,B=1", "lr=0.04,B=1", "lr=0.04,B=4"):
        np.testing.assert_allclose(ball[k]["level"], ball[k]["predicted"], rtol=0.25)
