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
