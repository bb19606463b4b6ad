import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.data import augment

IMAGE = jnp.arange(5 * 5 * 2, dtype=jnp.float32).reshape(5, 5, 2) + 1  # no zero pixels
KEYS = jax.random.split(jax.random.key(0), 64)


def test_flip_always_never_and_half():
    np.testing.assert_array_equal(augment.random_flip(1.0)(KEYS[0], IMAGE), np.asarray(IMAGE)[:, ::-1])
    np.testing.assert_array_equal(augment.random_flip(0.0)(KEYS[0], IMAGE), IMAGE)
    out = jax.jit(jax.vmap(augment.random_flip(0.5), in_axes=(0, None)))(KEYS, IMAGE)
    flipped = np.mean([not np.array_equal(o, IMAGE) for o in np.asarray(out)])
    assert 0.25 < flipped < 0.75


def test_crop_with_padding_is_a_window_of_the_padded_image():
    padded = np.pad(np.asarray(IMAGE), ((2, 2), (2, 2), (0, 0)))
    windows = {(i, j): padded[i:i + 5, j:j + 5] for i in range(5) for j in range(5)}
    seen = set()
    for out in np.asarray(jax.jit(jax.vmap(augment.random_crop(2), in_axes=(0, None)))(KEYS, IMAGE)):
        match = [ij for ij, win in windows.items() if np.array_equal(out, win)]
        assert len(match) == 1
        seen.add(match[0])
    assert len(seen) > 10  # many offsets drawn
    np.testing.assert_array_equal(augment.random_crop(0)(KEYS[0], IMAGE), IMAGE)


def test_affine_rotates_like_rot90_and_shifts_by_whole_pixels():
    np.testing.assert_allclose(augment.affine(IMAGE, 90.0, jnp.zeros(2)), np.rot90(np.asarray(IMAGE)), atol=1e-4)
    np.testing.assert_allclose(augment.affine(IMAGE, 0.0, jnp.zeros(2)), IMAGE, atol=1e-5)
    shifted = np.zeros_like(np.asarray(IMAGE))
    shifted[1:, :-2] = np.asarray(IMAGE)[:-1, 2:]  # one pixel down, two left
    np.testing.assert_allclose(augment.affine(IMAGE, 0.0, jnp.array([1.0, -2.0])), shifted, atol=1e-5)
    small = augment.random_affine(max_degrees=5.0)(KEYS[0], IMAGE)
    assert small.shape == IMAGE.shape and not np.allclose(small, IMAGE)


def test_crop_resize_is_the_identity_on_the_whole_image_and_exact_on_a_ramp():
    np.testing.assert_allclose(augment.crop_resize(IMAGE, 0.0, 0.0, 5.0, 5.0), IMAGE, atol=1e-5)
    # IMAGE[r, c, ch] = 10r + 2c + ch + 1 is linear, so bilinear resampling of any window is exact:
    # out[i, j] = IMAGE at (1 + (i + ½)·2.5/5 − ½, 0.5 + (j + ½)·3/5 − ½)
    i, j, ch = np.meshgrid(np.arange(5), np.arange(5), np.arange(2), indexing="ij")
    expected = 10 * (1 + (i + 0.5) * 0.5 - 0.5) + 2 * (0.5 + (j + 0.5) * 0.6 - 0.5) + ch + 1
    np.testing.assert_allclose(augment.crop_resize(IMAGE, 1.0, 0.5, 2.5, 3.0), expected, atol=1e-4)


def test_random_resized_crop_zooms_inside_the_image():
    np.testing.assert_allclose(augment.random_resized_crop(1.0, 1.0)(KEYS[0], IMAGE), IMAGE, atol=1e-5)
    outs = np.asarray(jax.jit(jax.vmap(augment.random_resized_crop(0.3), in_axes=(0, None)))(KEYS, IMAGE))
    assert outs.min() >= float(IMAGE.min()) - 1e-4 and outs.max() <= float(IMAGE.max()) + 1e-4
    # a window of a share s < 1 of the area spans less than the image: the ramp's range shrinks
    spans = outs[:, -1, :, 0].mean(1) - outs[:, 0, :, 0].mean(1)  # row ramp seen top to bottom
    assert np.all(spans <= 40 + 1e-3) and np.mean(spans) < 36 and len(np.unique(spans.round(3))) > 30
    with pytest.raises(ValueError, match="random_resized_crop: need 0 < min_scale <= 1"):
        augment.random_resized_crop(0.0)


def test_gaussian_noise_statistics():
    x = jnp.zeros((100, 100))
    out = augment.gaussian_noise(0.5)(KEYS[0], x)
    assert abs(float(out.mean())) < 0.02 and abs(float(out.std()) - 0.5) < 0.02


def test_cutout_zeroes_one_square():
    ones = jnp.ones((9, 9, 1))
    outs = np.asarray(jax.jit(jax.vmap(augment.cutout(3), in_axes=(0, None)))(KEYS, ones))[..., 0]
    for out in outs:
        rows, cols = np.nonzero(out == 0)
        assert 0 < len(rows) <= 9
        assert len(rows) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)  # a rectangle
    assert any((o == 0).sum() == 9 for o in outs)


def test_batched_composition_is_pure_jittable_and_per_example():
    f = augment.batched(augment.compose(augment.random_crop(1), augment.random_affine(10.0, 1.0),
                                        augment.cutout(2), augment.gaussian_noise(0.1)))
    xb = jnp.broadcast_to(IMAGE, (4, 5, 5, 2))
    jf = jax.jit(f)
    a = jf(jax.random.key(1), xb)
    np.testing.assert_array_equal(a, jf(jax.random.key(1), xb))  # same key, same bits
    assert not np.array_equal(a[0], a[1])  # each example its own transformation
    assert not np.array_equal(a, jf(jax.random.key(2), xb))


def test_augment_bad_input():
    with pytest.raises(ValueError, match=r"random_crop: expected one image of shape \(H, W, C\), got shape \(2, 5, 5, 2\) \(a batch\? wrap"):
        augment.random_crop(1)(KEYS[0], jnp.ones((2, 5, 5, 2)))
    with pytest.raises(ValueError, match="random_flip: p must be in"):
        augment.random_flip(2.0)
    with pytest.raises(ValueError, match="cutout: size must be a positive int"):
        augment.cutout(0)


def test_default_augmentation_keeps_shapes():
    for shape in [(3, 8, 8, 1), (3, 2)]:
        x = jnp.ones(shape)
        out = jax.jit(augment.default(shape))(jax.random.key(0), x)
        assert out.shape == shape and not np.array_equal(out, x)
