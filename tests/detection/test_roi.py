"""RoI pooling and RoI align against naive loop references written from torchvision's
documented algorithm (torchvision itself is not a dependency), and RoI align's gradient
against finite differences in float64."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.detection import roi_align, roi_pool


def c_round(x):
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def ref_roi_pool(f, box, out, scale):
    """One box of one (H, W, C) map, torchvision's roi_pool loops."""
    height, width, channels = f.shape
    x1, y1, x2, y2 = (c_round(v * scale) for v in box)
    roi_w, roi_h = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
    bin_h, bin_w = roi_h / out[0], roi_w / out[1]
    y = np.zeros((out[0], out[1], channels))
    for p in range(out[0]):
        for q in range(out[1]):
            hs = min(max(math.floor(p * bin_h) + y1, 0), height)
            he = min(max(math.ceil((p + 1) * bin_h) + y1, 0), height)
            ws = min(max(math.floor(q * bin_w) + x1, 0), width)
            we = min(max(math.ceil((q + 1) * bin_w) + x1, 0), width)
            if he > hs and we > ws:
                y[p, q] = f[hs:he, ws:we].reshape(-1, channels).max(0)
    return y


def bilinear(f, y, x):
    height, width = f.shape[:2]
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return np.zeros(f.shape[2])
    y, x = max(y, 0.0), max(x, 0.0)
    y_lo, x_lo = int(y), int(x)
    if y_lo >= height - 1:
        y_hi = y_lo = height - 1
        y = float(y_lo)
    else:
        y_hi = y_lo + 1
    if x_lo >= width - 1:
        x_hi = x_lo = width - 1
        x = float(x_lo)
    else:
        x_hi = x_lo + 1
    ly, lx = y - y_lo, x - x_lo
    hy, hx = 1 - ly, 1 - lx
    return hy * hx * f[y_lo, x_lo] + hy * lx * f[y_lo, x_hi] + ly * hx * f[y_hi, x_lo] + ly * lx * f[y_hi, x_hi]


def ref_roi_align(f, box, out, scale, sampling_ratio, aligned):
    """One box of one (H, W, C) map, torchvision's roi_align loops."""
    off = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (v * scale - off for v in box)
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:
        roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
    bin_h, bin_w = roi_h / out[0], roi_w / out[1]
    gh = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / out[0])
    gw = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / out[1])
    count = max(gh * gw, 1)
    y = np.zeros((out[0], out[1], f.shape[2]))
    for p in range(out[0]):
        for q in range(out[1]):
            for iy in range(gh):
                yy = y1 + p * bin_h + (iy + 0.5) * bin_h / gh
                for ix in range(gw):
                    xx = x1 + q * bin_w + (ix + 0.5) * bin_w / gw
                    y[p, q] += bilinear(f, yy, xx)
            y[p, q] /= count
    return y


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(2, 9, 11, 3))
    # boxes in image coordinates (scale 1/2 → map): inside, at edges, past the map, tiny, degenerate,
    # and halves to exercise rounding
    boxes = np.array([[[1.0, 2.0, 15.0, 12.0], [0.0, 0.0, 22.0, 18.0], [5.3, 7.7, 9.1, 8.2], [-4.0, -3.0, 6.0, 5.0]],
                      [[3.0, 3.0, 3.0, 3.0], [18.5, 14.5, 27.0, 25.0], [7.0, 1.0, 21.0, 17.5], [2.5, 4.5, 13.0, 9.0]]])
    return f, boxes


def test_roi_pool_equals_the_loop_reference(case):
    f, boxes = case
    out = (3, 4)
    got = np.asarray(roi_pool(jnp.asarray(f, jnp.float32), jnp.asarray(boxes, jnp.float32), out, spatial_scale=0.5))
    assert got.shape == (2, 4, 3, 4, 3)
    for b in range(2):
        for r in range(4):
            np.testing.assert_allclose(got[b, r], ref_roi_pool(f[b], boxes[b, r], out, 0.5), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("sampling_ratio,aligned", [(2, False), (2, True), (-1, False), (-1, True), (1, True)])
def test_roi_align_equals_the_loop_reference(case, sampling_ratio, aligned):
    f, boxes = case
    out = (3, 2)
    fn = jax.jit(roi_align, static_argnums=2, static_argnames=("spatial_scale", "sampling_ratio", "aligned"))
    got = np.asarray(fn(jnp.asarray(f, jnp.float32), jnp.asarray(boxes, jnp.float32), out, spatial_scale=0.5,
                        sampling_ratio=sampling_ratio, aligned=aligned))
    for b in range(2):
        for r in range(4):
            ref = ref_roi_align(f[b], boxes[b, r], out, 0.5, sampling_ratio, aligned)
            np.testing.assert_allclose(got[b, r], ref, rtol=1e-5, atol=1e-5, err_msg=f"box {b}, {r}")


def test_roi_align_of_a_pixel_aligned_box_is_the_average_pool():
    """aligned=True, one sample per cell: a box covering cells [2, 6) × [0, 4) pooled 2×2 is the
    mean of each 2×2 block of those cells (the half-pixel shift puts samples on cell centres)."""
    f = jnp.arange(8 * 8, dtype=jnp.float32).reshape(1, 8, 8, 1)
    got = roi_align(f, jnp.array([[[2.0, 0.0, 6.0, 4.0]]]), 2, sampling_ratio=2, aligned=True)
    blocks = np.asarray(f)[0, 0:4, 2:6, 0].reshape(2, 2, 2, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(np.asarray(got)[0, 0, ..., 0], blocks, rtol=1e-6)


def test_roi_align_gradient_matches_finite_differences(case):
    f, boxes = case
    with jax.enable_x64(True):
        fx, bx = jnp.asarray(f[:1, :6, :7, :2], jnp.float64), jnp.asarray(boxes[:1, :3] * 0.6 + 0.37, jnp.float64)
        w = jnp.asarray(np.random.default_rng(1).normal(size=(1, 3, 2, 2, 2)))

        def loss(features, bxs):
            return jnp.sum(w * roi_align(features, bxs, 2, spatial_scale=0.5, sampling_ratio=2, aligned=True))

        g_f, g_b = jax.jit(jax.grad(loss, argnums=(0, 1)))(fx, bx)  # jitted: op by op compiles every primitive
        loss = jax.jit(loss)  # one compile for the ~60 evaluations below, not op by op each time
        eps = 1e-6
        for arg, grad in ((0, g_f), (1, g_b)):
            x = [fx, bx][arg]
            for idx in [tuple(i) for i in np.ndindex(*x.shape)][::max(1, x.size // 15)]:
                e = np.zeros(x.shape)  # numpy: no scatter compiled per index
                e[idx] = eps
                args_p, args_m = [fx, bx], [fx, bx]
                args_p[arg], args_m[arg] = x + e, x - e
                fd = (loss(*args_p) - loss(*args_m)) / (2 * eps)
                np.testing.assert_allclose(grad[idx], fd, rtol=1e-6, atol=1e-8)
        assert float(jnp.abs(g_b).sum()) > 0  # the boxes do receive a gradient


def test_roi_pool_gradient_goes_to_each_bins_max():
    f = jnp.asarray(np.random.default_rng(2).normal(size=(1, 4, 4, 1)), jnp.float32)
    g = jax.grad(lambda x: roi_pool(x, jnp.array([[[0.0, 0.0, 3.0, 3.0]]]), 2).sum())(f)
    blocks = np.asarray(f)[0, ..., 0].reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(4, 4)
    expected = np.zeros((4, 4))
    for k, i in enumerate(blocks.argmax(1)):
        p, q = divmod(k, 2)
        expected[2 * p + i // 2, 2 * q + i % 2] = 1
    np.testing.assert_array_equal(np.asarray(g)[0, ..., 0], expected)


def test_errors_name_the_function_and_the_shapes():
    f = jnp.zeros((2, 4, 4, 1))
    with pytest.raises(ValueError, match=r"roi_align: features must be \(B, H, W, C\) and boxes \(B, R, 4\)"):
        roi_align(f, jnp.zeros((3, 1, 4)), 2)
    with pytest.raises(ValueError, match="roi_pool: output_size must be a positive int"):
        roi_pool(f, jnp.zeros((2, 1, 4)), 0)
