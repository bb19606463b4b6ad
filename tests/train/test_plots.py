"""Sample grids (``jdl.train.plots``): each image lands in its cell, row by row, values clipped to
[0, 1], gaps 0; grey grids are written ink-dark (1 − value), colour ones as they are."""

import numpy as np
from matplotlib.image import imread

from jdl.train.plots import image_grid, save_image_grid


def test_image_grid_places_each_image_in_its_cell():
    x = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3, 1) / 40  # 5 images 2×3, in [0, 0.75]
    x[4, 0, 0, 0] = 7.0  # clipped to 1
    g = image_grid(x, n_cols=2, pad=1)
    assert g.shape == (3 * 3 - 1, 2 * 4 - 1)  # rows·(H + pad) − pad, cols·(W + pad) − pad
    np.testing.assert_array_equal(g[0:2, 4:7], x[1, ..., 0])  # row 0, column 1
    np.testing.assert_array_equal(g[3:5, 0:3], x[2, ..., 0])  # row 1, column 0
    assert g[6, 0] == 1.0 and np.all(g[2, :] == 0) and np.all(g[:, 3] == 0) and np.all(g[6:, 4:] == 0)
    assert image_grid(np.ones((3, 2, 2, 3)), n_cols=3).shape == (2, 8, 3)  # colour keeps its channels


def test_save_image_grid_writes_ink_dark_pixels_scaled_up(tmp_path):
    x = np.zeros((2, 2, 2), np.float32)
    x[0, 0, 0] = 1.0  # one black pixel
    save_image_grid(tmp_path / "g.png", x, n_cols=2, scale=3)
    img = imread(tmp_path / "g.png")[..., :3].mean(-1)  # (2·3, 5·3) grey levels
    assert img.shape == (6, 15)
    assert np.all(img[:3, :3] == 0.0) and np.all(img[3:, :3] == 1.0) and np.all(img[:, 6:9] == 1.0)


def _lines(ax):
    return {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()}


def test_history_figure_draws_each_recorded_metric_of_each_panel():
    """A GAN's history has no ``train_loss``: the default panels draw nothing, the GAN's panels
    draw its two losses (train) and D's means (train and validation) with the recorded values."""
    from jdl.train.plots import history_figure

    d_loss, g_loss, d_real = [1.3, 1.2, 1.1], [0.9, 1.1, 1.3], [0.6, 0.7, 0.8]
    d_fake, v_real = [0.4, 0.3, 0.2], [0.5, 0.6, 0.7]
    history = [{"epoch": e + 1, "train_d_loss": d_loss[e], "train_g_loss": g_loss[e], "train_d_real": d_real[e],
                "train_d_fake": d_fake[e], "validation_d_real": v_real[e], "validation_d_fake": 0.3} for e in range(3)]
    assert all(not ax.get_lines() for ax in history_figure(history).axes)
    losses, means = history_figure(history, panels=(("d_loss", "g_loss"), ("d_real", "d_fake"), ("accuracy",))).axes
    assert _lines(losses) == {"train d_loss": d_loss, "train g_loss": g_loss}
    assert _lines(means) == {"train d_real": d_real, "validation d_real": v_real, "train d_fake": d_fake,
                             "validation d_fake": [0.3] * 3}
    assert [line.get_linestyle() for line in means.get_lines()] == ["-", "--", "-", "--"]  # style = split
    classifier = [{"epoch": 1, "train_loss": 2.0, "validation_loss": 2.5, "train_accuracy": 0.5}]
    loss, accuracy = history_figure(classifier).axes
    assert _lines(loss) == {"train": [2.0], "validation": [2.5]} and _lines(accuracy) == {"train": [0.5]}
