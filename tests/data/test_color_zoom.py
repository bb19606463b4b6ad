"""Colour and zoom augmentations: brightness, contrast and sepia against torchvision's documented
formulas written in PyTorch (torchvision itself is not a dependency); zoom against
scipy.ndimage.zoom and a bilinear value by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from jdl.data import augment, color


@pytest.fixture(scope="module")
def image():
    return jnp.asarray(np.random.default_rng(0).uniform(size=(5, 6, 3)), jnp.float32)  # (H, W, C) in [0, 1]


@pytest.mark.torch
def test_brightness_and_contrast_equal_torchvision_formulas(image):
    torch = pytest.importorskip("torch")
    img = torch.tensor(np.asarray(image).transpose(2, 0, 1))  # (C, H, W) as torchvision
    blend = lambda a, b, f: (f * a + (1 - f) * b).clamp(0, 1)  # torchvision's _blend for floats
    gray = lambda t: (0.2989 * t[0] + 0.587 * t[1] + 0.114 * t[2]).unsqueeze(0)  # rgb_to_grayscale
    for f in (0.0, 0.6, 1.7):
        bright = blend(img, torch.zeros_like(img), f)  # adjust_brightness
        contrast = blend(img, torch.mean(gray(img), dim=(-3, -2, -1), keepdim=True), f)  # adjust_contrast
        np.testing.assert_allclose(color.adjust_brightness(image, f), bright.numpy().transpose(1, 2, 0), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(color.adjust_contrast(image, f), contrast.numpy().transpose(1, 2, 0), rtol=1e-6, atol=1e-6)
    one = image[..., :1]  # one channel: the mean of the image itself
    np.testing.assert_allclose(color.adjust_contrast(one, 0.0), jnp.full_like(one, jnp.mean(one)), rtol=1e-6)


def test_sepia_equals_the_matrix_pixel_by_pixel(image):
    r, g, b = (np.asarray(image[..., i], np.float64) for i in range(3))
    expected = np.stack([0.393 * r + 0.769 * g + 0.189 * b,
                         0.349 * r + 0.686 * g + 0.168 * b,
                         0.272 * r + 0.534 * g + 0.131 * b], -1).clip(0, 1)
    np.testing.assert_allclose(color.sepia(image), expected, rtol=1e-6, atol=1e-7)
    assert float(color.sepia(jnp.ones((1, 1, 3)))[0, 0, 2]) == pytest.approx(0.937)  # white: B' = 0.937, R', G' clipped
    with pytest.raises(ValueError, match="sepia: expected an image"):
        color.sepia(image[..., :1])


def test_random_colour_augmentations_stay_in_their_range(image):
    batch = jnp.stack([image] * 8)
    f = augment.batched(augment.compose(color.random_brightness(0.5), color.random_contrast(0.5), color.random_sepia(0.5)))
    out = jax.jit(f)(jax.random.key(1), batch)
    assert out.shape == batch.shape and float(out.min()) >= 0 and float(out.max()) <= 1
    ratios = out[:, 0, 0, 0] / batch[:, 0, 0, 0]
    assert float(jnp.std(ratios)) > 0.01  # each example drew its own factors


def test_zoom_equals_scipy_zoom_centre_crop():
    x = np.random.default_rng(2).uniform(size=(6, 6, 2)).astype(np.float32).astype(np.float64)
    big = ndimage.zoom(x, (2, 2, 1), order=1, grid_mode=True, mode="grid-constant")  # (12, 12, 2)
    np.testing.assert_allclose(augment.zoom(jnp.asarray(x, jnp.float32), 2.0), big[3:9, 3:9], rtol=1e-5, atol=1e-6)


def test_zoom_by_hand_and_zoom_out():
    x = jnp.arange(9.0).reshape(3, 3, 1)  # x[r, c] = 3r + c, linear: bilinear sampling is exact
    zoom = jax.jit(augment.zoom)  # one compilation: the scale is traced
    zin = zoom(x, 2.0)  # output (r, c) reads (1 + (r − 1)/2, 1 + (c − 1)/2)
    np.testing.assert_allclose(zin[..., 0], [[2.0, 2.5, 3.0], [3.5, 4.0, 4.5], [5.0, 5.5, 6.0]], rtol=1e-6)
    zout = zoom(x, 0.5)  # reads 1 + 2(r − 1): corners outside (0), edges' centres at the border
    np.testing.assert_allclose(zout[..., 0], [[0.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 0.0]], atol=1e-6)
    affine = ndimage.affine_transform(np.asarray(x[..., 0]), np.diag([2.0, 2.0]), offset=[-1.0, -1.0], order=1, mode="constant")
    np.testing.assert_allclose(zout[..., 0], affine, atol=1e-6)
    out = jax.jit(augment.batched(augment.random_zoom(0.8, 1.2)))(jax.random.key(0), jnp.stack([x] * 3))
    assert out.shape == (3, 3, 3, 1) and not np.allclose(out[0], out[1])
    with pytest.raises(ValueError, match="random_zoom: need 0 < min_scale <= max_scale"):
        augment.random_zoom(1.2, 0.8)
