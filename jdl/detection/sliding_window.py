"""The sliding-window detector (OverFeat's idea): a CNN classifier of windows, applied
convolutionally over an image pyramid.

The course's first detector slides a window across the image and classifies every position —
thousands of windows, each a forward pass. OverFeat saw that a CNN classifier whose dense layers
are rewritten as convolutions (a dense layer on a k×k×C feature map is a k×k convolution; the
next dense layer a 1×1 convolution) computes *all* windows at once when run on the whole image:
neighbouring windows share their convolutions, and output cell (i, j) is the classifier's answer
for the window at (s·i, s·j), s the network's total stride (2 here: one 2×2 max pool).

The classifier sees ``window``×``window`` crops (18×18) and answers C + 1 classes (0 =
background) for the ``box``×``box`` centre of the crop (12×12), the object's box. It is trained
on crops cut from the training images with RoI align: positives around each object (jittered
in position and scale), random crops as negatives, each labelled by the IoU of its centre box
with the objects (≥ 0.5: that object's class, < 0.3: background, between: ignored). To detect,
the image (padded by ``pad`` pixels) is resampled to a few scales — one per box size the
detector reports — the convolutional classifier scores every window of every scale, and
per-class NMS keeps the best. Boxes are the windows' centre boxes: no box regression.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from jdl.core import Module
from jdl.detection.detector import Detector
from jdl.detection.candidates import select_labelled
from jdl.detection.roi import roi_align
from jdl.losses import softmax_cross_entropy
from jdl.metrics import box_iou
from jdl.nn import Conv2D, Dense, Flatten, MaxPool2D, conv2d, relu, serial

STRIDE = 2  # the classifier's total stride: one 2×2 max pool


@dataclass(frozen=True)
class SlidingWindowConfig:
    """A sliding-window detector: classes C; crop side ``window`` and its centre box side ``box``
    (classifier pixels); ``box_sizes`` the detected box sides in image pixels, one pyramid scale
    each; images padded by ``pad`` pixels (zeros) so windows reach the border; crops per object
    ``n_positive`` and per image ``n_negative``; ``widths`` of conv1, conv2, conv3 and the dense layer."""
    n_classes: int = 4
    window: int = 18
    box: int = 12
    box_sizes: tuple = (9.0, 14.0, 21.0)
    pad: int = 8
    widths: tuple = (16, 32, 32, 64)
    n_positive: int = 2
    n_negative: int = 16
    image_size: int = 64
    max_detections: int = 50
    pre_nms_top_k: int = 300
    iou_threshold: float = 0.5
    score_threshold: float = 0.05

    def __post_init__(self):
        if not 0 < self.box <= self.window or self.pad < 0 or not self.box_sizes or min(self.box_sizes) <= 0:
            raise ValueError(f"SlidingWindowConfig: need 0 < box ≤ window, pad ≥ 0 and positive box_sizes; got "
                             f"box={self.box}, window={self.window}, pad={self.pad}, box_sizes={self.box_sizes}")


def window_classifier(config: SlidingWindowConfig) -> Module:
    """The window classifier: features = conv3×3 (VALID) → ReLU → max pool 2 → conv3×3 → ReLU →
    conv3×3 → ReLU; head = flatten → dense → ReLU → dense (C + 1 logits).
    Shapes: crops (B, window, window, 3) → logits (B, C + 1). Params {'0_serial': features,
    '1_serial': head}."""
    c1, c2, c3, d = config.widths
    features = serial(Conv2D(c1, 3, padding="VALID"), relu, MaxPool2D(2), Conv2D(c2, 3, padding="VALID"), relu,
                      Conv2D(c3, 3, padding="VALID"), relu)
    head = serial(Flatten(), Dense(d), relu, Dense(config.n_classes + 1))
    return serial(features, head)


def apply_convolutionally(classifier: Module, params, images: jax.Array) -> jax.Array:
    """The classifier on every window of ``images`` at once (OverFeat): the features run on the
    whole image, then the dense layers run as convolutions —

        dense 1: w (k·k·C, d) → kernel (k, k, C, d), VALID;   dense 2: w (d, C+1) → kernel (1, 1, d, C+1),

    k×k being the features of one window. Output (i, j) equals the classifier on the crop
    images[s·i : s·i + window, s·j : s·j + window], s = ``STRIDE``.
    Shapes: images (B, H, W, 3) → logits (B, (H − window)//s + 1, (W − window)//s + 1, C + 1).
    """
    features, _ = classifier.children
    f, _ = features.apply(params["0_serial"], {}, images)  # (B, H', W', C)
    head = params["1_serial"]
    w1, b1 = head["1_dense"]["w"], head["1_dense"]["b"]
    c = f.shape[-1]
    k = int(round((w1.shape[0] // c) ** 0.5))
    if k * k * c != w1.shape[0]:
        raise ValueError(f"apply_convolutionally: the first dense layer takes {w1.shape[0]} inputs, "
                         f"not k·k·C for the features' C={c}")
    h = relu(conv2d(f, w1.reshape(k, k, c, -1), b1))  # (B, H'', W'', d): flatten order is (row, col, channel)
    w2, b2 = head["3_dense"]["w"], head["3_dense"]["b"]
    return conv2d(h, w2.reshape(1, 1, *w2.shape), b2)  # (B, H'', W'', C + 1)


def label_windows(centre_boxes: jax.Array, gt_boxes: jax.Array, gt_labels: jax.Array, gt_valid: jax.Array):
    """A window's class from the IoU of its centre box with the objects: with IoU_m = IoU(box, g_m),

        y = 1 + label(g_m*) if max_m IoU_m ≥ 0.5 (m* the argmax),  0 if < 0.3,  and weight 0 between.

    Shapes: centre_boxes (N, 4), gt (M, 4), (M,), (M,) → y (N,) int32, weight (N,) float32."""
    iou = jnp.where(gt_valid[None, :], box_iou(centre_boxes, gt_boxes), -1.0)  # (N, M)
    best, m = jnp.max(iou, axis=1), jnp.argmax(iou, axis=1)
    y = jnp.where(best >= 0.5, 1 + gt_labels[m], 0).astype(jnp.int32)
    return y, ((best >= 0.5) | (best < 0.3)).astype(jnp.float32)


def sample_crops(key: jax.Array, gt_boxes: jax.Array, gt_valid: jax.Array, config: SlidingWindowConfig):
    """The centre boxes of one image's training crops: ``n_positive`` per object, centre moved by
    U(−0.1, 0.1)·side and side scaled by exp(U(−0.2, 0.2)); ``n_negative`` random ones, side
    log-uniform in [6, 32], centre uniform over the image. Padded objects give boxes far outside.
    Shapes: gt_boxes (M, 4), gt_valid (M,) → centre boxes (M·n_positive + n_negative, 4)."""
    k_shift, k_scale, k_side, k_centre = jax.random.split(key, 4)
    centre = (gt_boxes[:, :2] + gt_boxes[:, 2:]) / 2  # (M, 2)
    side = jnp.sqrt(jnp.prod(jnp.maximum(gt_boxes[:, 2:] - gt_boxes[:, :2], 1.0), axis=-1))  # (M,)
    shape = (config.n_positive, *side.shape)
    c = centre[None] + jax.random.uniform(k_shift, (*shape, 2), minval=-0.1, maxval=0.1) * side[None, :, None]  # (P, M, 2)
    s = side[None] * jnp.exp(jax.random.uniform(k_scale, shape, minval=-0.2, maxval=0.2))  # (P, M)
    c = jnp.where(gt_valid[None, :, None], c, -1e3)
    n = config.n_negative
    s_neg = jnp.exp(jax.random.uniform(k_side, (n,), minval=jnp.log(6.0), maxval=jnp.log(32.0)))
    c_neg = jax.random.uniform(k_centre, (n, 2), maxval=config.image_size)
    c, s = jnp.concatenate([c.reshape(-1, 2), c_neg]), jnp.concatenate([s.reshape(-1), s_neg])
    return jnp.concatenate([c - s[:, None] / 2, c + s[:, None] / 2], axis=-1)


def window_of(centre_boxes: jax.Array, config: SlidingWindowConfig) -> jax.Array:
    """The crop whose centre ``box``×``box`` is each centre box: the same centre, sides ×
    window/box. Shapes: (..., 4) → (..., 4)."""
    c, half = (centre_boxes[..., :2] + centre_boxes[..., 2:]) / 2, (centre_boxes[..., 2:] - centre_boxes[..., :2]) / 2
    half = half * (config.window / config.box)
    return jnp.concatenate([c - half, c + half], axis=-1)


def crops(images: jax.Array, windows: jax.Array, config: SlidingWindowConfig) -> jax.Array:
    """Resample each window (image pixels) of the zero-padded image to window×window with RoI
    align (aligned, adaptive sampling: averaging when shrinking) — the same sampling as
    ``pyramid``, so a crop equals the pyramid's window at the same scale and place.
    Shapes: images (B, H, W, 3), windows (B, N, 4) → (B, N, window, window, 3)."""
    p = config.pad
    padded = jnp.pad(images, ((0, 0), (p, p), (p, p), (0, 0)))
    return roi_align(padded, windows + p, config.window, aligned=True)


def pyramid_level(images: jax.Array, box_size: float, config: SlidingWindowConfig):
    """The padded image resampled so that a ``box`` of classifier pixels is ``box_size`` image
    pixels: side n = round((H + 2·pad)·box/box_size); returns the level and its pixel size ρ
    (image pixels per level pixel). Shapes: (B, H, W, 3) → ((B, n, n, 3), ρ)."""
    size = config.image_size + 2 * config.pad
    n = int(round(size * config.box / box_size))
    whole = jnp.broadcast_to(jnp.asarray([0.0, 0.0, size, size], images.dtype), (images.shape[0], 1, 4))
    padded = jnp.pad(images, ((0, 0), (config.pad,) * 2, (config.pad,) * 2, (0, 0)))
    return roi_align(padded, whole, n, aligned=True)[:, 0], size / n


def window_boxes(grid: tuple[int, int], rho: float, config: SlidingWindowConfig) -> jax.Array:
    """The centre boxes (image pixels) of a level's windows: window (i, j) starts at level pixel
    (s·i, s·j), its centre box at + (window − box)/2, so x1 = (s·j + (window − box)/2)·ρ − pad.
    Shapes: → (grid_h·grid_w, 4), row-major like the logits."""
    i, j = jnp.meshgrid(jnp.arange(grid[0]), jnp.arange(grid[1]), indexing="ij")
    margin = (config.window - config.box) / 2
    x1, y1 = (STRIDE * j + margin) * rho - config.pad, (STRIDE * i + margin) * rho - config.pad
    side = config.box * rho
    return jnp.stack([x1, y1, x1 + side, y1 + side], axis=-1).reshape(-1, 4).astype(jnp.float32)


def sliding_window_detector(config: SlidingWindowConfig = SlidingWindowConfig()) -> Detector:
    """The sliding-window ``Detector``: loss = cross-entropy of the classifier on the sampled
    crops (``sample_crops``, ``label_windows``), mean over the crops of weight 1; predict = the
    convolutional classifier on each pyramid level, score max_{c ≥ 1} softmax(z)_c, per-class NMS."""
    classifier = window_classifier(config)

    def init(key, images):
        return classifier.init(key, jax.ShapeDtypeStruct((1, config.window, config.window, 3), jnp.float32))

    def loss(params, state, images, targets, key):
        gt, gt_labels, gt_valid = targets["boxes"], targets["labels"], targets["valid"]
        centre = jax.vmap(lambda k, b, v: sample_crops(k, b, v, config))(
            jax.random.split(key, images.shape[0]), gt, gt_valid)  # (B, N, 4)
        y, weight = jax.vmap(label_windows)(centre, gt, gt_labels, gt_valid)  # (B, N)
        x = crops(images, window_of(centre, config), config)  # (B, N, w, w, 3)
        logits, _ = classifier.apply(params, state, x.reshape(-1, *x.shape[2:]))  # (B·N, C + 1)
        logits = logits.reshape(*y.shape, -1)
        ce = softmax_cross_entropy(logits, y, where=weight)
        accuracy = jnp.sum((jnp.argmax(logits, -1) == y) * weight) / jnp.maximum(jnp.sum(weight), 1)
        return ce, (state, {"accuracy": accuracy, "positive_fraction": jnp.mean((y > 0) * weight)})

    def predict(params, state, images):
        boxes, scores, labels = [], [], []
        for box_size in config.box_sizes:
            level, rho = pyramid_level(images, box_size, config)
            logits = apply_convolutionally(classifier, params, level)  # (B, g_h, g_w, C + 1)
            p = jax.nn.softmax(logits.reshape(images.shape[0], -1, logits.shape[-1]), axis=-1)[..., 1:]  # (B, N, C)
            boxes.append(jnp.broadcast_to(window_boxes(logits.shape[1:3], rho, config), (*p.shape[:2], 4)))
            scores.append(jnp.max(p, -1))
            labels.append(jnp.argmax(p, -1))
        boxes, scores, labels = (jnp.concatenate(a, 1) for a in (boxes, scores, labels))
        return select_labelled(boxes, scores, labels, config.n_classes, config.max_detections, config.iou_threshold,
                               config.score_threshold, config.pre_nms_top_k)

    return Detector("sliding_window", init, loss, predict)
