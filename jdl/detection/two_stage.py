"""A two-stage detector: Faster R-CNN in miniature, trained end to end.

The course's R-CNN family: R-CNN classifies warped region proposals with a CNN and per-class
SVMs (trained in separate stages); Fast R-CNN runs the CNN once per image and cuts each
proposal's features out of the last feature map by RoI pooling, then a head predicts C + 1
class probabilities (0 = background) and C boxes, trained at once; Faster R-CNN replaces the
external proposals with a region proposal network on the same feature map (``jdl.detection.rpn``).

Here: a small conv backbone (stride 4, swappable), the RPN, proposals (top-N after NMS, gradients
stopped), RoI align to r×r, and a two-layer dense head with C + 1 class logits and per-class box
deltas. Training samples proposals — with the ground-truth boxes added, as torchvision does —
by IoU with the objects (≥ 0.5: foreground of that object's class, else background; at most a
quarter foreground) and minimizes

    L = L_rpn + (1/R) Σ_r CE(p_r, u_r) + λ·(1/R_fg) Σ_{r: u_r ≥ 1} smooth_L1(d_r^{u_r} − t_r),

u_r the class of RoI r, t_r = encode(g_r, r) with weights (10, 10, 5, 5). Prediction: proposals
→ head → for every class c, score p_c and box decode(d^c, r) → per-class NMS → ``Detections``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp

from jdl.core import Module
from jdl.detection.anchors import anchors as make_anchors
from jdl.detection.assign import POSITIVE, assign, subsample
from jdl.detection.boxes import clip_boxes, decode, encode
from jdl.detection.detector import Detector
from jdl.detection.losses import smooth_l1
from jdl.detection.candidates import select_labelled
from jdl.detection.roi import roi_align
from jdl.detection.rpn import RPNConfig, RPNHead, flatten_outputs, proposals, rpn_loss
from jdl.losses import softmax_cross_entropy
from jdl.nn import Conv2D, Dense, Flatten, parallel, relu, serial

HEAD_WEIGHTS = (10.0, 10.0, 5.0, 5.0)  # Fast R-CNN's box-target weights


def small_backbone(widths: tuple = (32, 32, 64, 64, 64)) -> tuple[Module, int]:
    """A minimal conv backbone of stride 4: conv3×3 → ReLU, then conv3×3 stride 2, conv3×3,
    conv3×3 stride 2, conv3×3 (each + ReLU). Returns (module, stride).
    Shapes: images (B, H, W, 3) → features (B, H/4, W/4, widths[-1])."""
    c1, c2, c3, c4, c5 = widths
    layers = [Conv2D(c1, 3), relu, Conv2D(c2, 3, stride=2), relu, Conv2D(c3, 3), relu,
              Conv2D(c4, 3, stride=2), relu, Conv2D(c5, 3), relu]
    return serial(*layers), 4


def RoIHead(n_classes: int, hidden: int = 128) -> Module:
    """Fast R-CNN's head: flatten → dense → ReLU → dense → ReLU, then class logits (C + 1) and
    per-class box deltas (4C, reshaped to (C, 4) by the caller).
    Shapes: pooled (N, r, r, C_f) → (logits (N, C + 1), deltas (N, 4C))."""
    return serial(Flatten(), Dense(hidden), relu, Dense(hidden), relu,
                  parallel(Dense(n_classes + 1), Dense(4 * n_classes)))


@dataclass(frozen=True)
class TwoStageConfig:
    """Classes C; the RPN's settings; RoI align to ``roi_size``² with ``sampling_ratio``; head
    width ``hidden``; training RoIs per image ``rois_per_image`` with at most
    ``foreground_fraction`` foreground at IoU ≥ ``foreground_iou``; the head's box-loss weight
    λ ``box_weight``; prediction: ``max_detections``, NMS ``iou_threshold``, ``score_threshold``."""
    n_classes: int = 4
    rpn: RPNConfig = field(default_factory=RPNConfig)
    roi_size: int = 5
    sampling_ratio: int = 2
    hidden: int = 128
    rois_per_image: int = 32
    foreground_fraction: float = 0.25
    foreground_iou: float = 0.5
    box_weight: float = 1.0
    image_size: int = 64
    max_detections: int = 50
    iou_threshold: float = 0.5
    score_threshold: float = 0.05


def roi_targets(key: jax.Array, rois: jax.Array, roi_valid: jax.Array, gt_boxes: jax.Array,
                gt_labels: jax.Array, gt_valid: jax.Array, config: TwoStageConfig):
    """One image's RoI minibatch and its targets: with m(r) = argmax_m IoU(r, g_m),

        u_r = 1 + label(g_m(r)) if max_m IoU(r, g_m) ≥ foreground_iou else 0,   t_r = encode(g_m(r), r, (10, 10, 5, 5)),

    then ``subsample`` keeps at most ``rois_per_image`` of the valid RoIs, at most
    ``foreground_fraction`` of them foreground; the kept ones come first.
    Returns (boxes (R, 4), classes u (R,) int32, box targets t (R, 4), weight (R,) 1 for a kept RoI).
    Shapes: rois (N, 4), roi_valid (N,), gt_boxes (M, 4), gt_labels (M,), gt_valid (M,); R = rois_per_image ≤ N."""
    t_fg = config.foreground_iou
    matched, label = assign(rois, gt_boxes, gt_valid, t_fg, t_fg, force_best=False)  # (N,)
    label = jnp.where(roi_valid, label, -1)
    label = subsample(key, label, config.rois_per_image, config.foreground_fraction)
    order = jnp.argsort(label < 0, stable=True)[:config.rois_per_image]  # kept RoIs first
    boxes, label, matched = rois[order], label[order], matched[order]
    foreground = label == POSITIVE
    classes = jnp.where(foreground, 1 + gt_labels[matched], 0).astype(jnp.int32)
    t = jnp.where(foreground[:, None], encode(gt_boxes[matched], boxes, HEAD_WEIGHTS), 0.0)  # finite everywhere
    return boxes, classes, t, (label >= 0).astype(jnp.float32)


def two_stage_detector(config: TwoStageConfig = TwoStageConfig(),
                       backbone: tuple[Module, int] | None = None) -> Detector:
    """Faster R-CNN in miniature as a ``Detector`` (the module docstring's loss and prediction).
    ``backbone`` is (module, stride) — images (B, H, W, 3) → features (B, H/stride, W/stride, C) —
    ``small_backbone()`` by default. Params {'backbone', 'rpn', 'head'}."""
    net, stride = backbone or small_backbone()
    if config.image_size % stride:
        raise ValueError(f"two_stage_detector: image_size={config.image_size} is not a multiple of the "
                         f"backbone's stride {stride}")
    rpn, head = RPNHead(config.rpn.n_anchors, config.rpn.width), RoIHead(config.n_classes, config.hidden)
    size = (config.image_size, config.image_size)
    h_f = config.image_size // stride
    anchors = make_anchors((h_f, h_f), stride, config.rpn.sizes, config.rpn.ratios)  # (N, 4)

    def init(key, images):
        k1, k2, k3 = jax.random.split(key, 3)
        x = jax.ShapeDtypeStruct((1, *images.shape[1:]), jnp.float32)
        p_b, s_b = net.init(k1, x)
        f = jax.eval_shape(lambda p: net.apply(p, s_b, x)[0], p_b)
        if f.shape[1:3] != (h_f, h_f):
            raise ValueError(f"two_stage_detector: the backbone maps {x.shape[1:3]} images to {f.shape[1:3]}, "
                             f"not the {(h_f, h_f)} its stride {stride} says")
        p_r, _ = rpn.init(k2, f)
        p_h, _ = head.init(k3, jax.ShapeDtypeStruct((1, config.roi_size, config.roi_size, f.shape[-1]), f.dtype))
        return {"backbone": p_b, "rpn": p_r, "head": p_h}, s_b

    def features(params, state, images):
        f, state = net.apply(params["backbone"], state, images)
        (o, d), _ = rpn.apply(params["rpn"], {}, f)
        return f, state, flatten_outputs(o, d)

    def classify(params, f, boxes):  # boxes (B, R, 4) → logits (B, R, C + 1), deltas (B, R, C, 4)
        pooled = roi_align(f, boxes, config.roi_size, 1.0 / stride, config.sampling_ratio, aligned=True)
        b, r = boxes.shape[:2]
        (logits, deltas), _ = head.apply(params["head"], {}, pooled.reshape(b * r, *pooled.shape[2:]))
        return logits.reshape(b, r, -1), deltas.reshape(b, r, config.n_classes, 4)

    def loss(params, state, images, targets, key):
        gt, gt_labels, gt_valid = targets["boxes"], targets["labels"], targets["valid"]
        k_rpn, k_roi = jax.random.split(key)
        f, state, (o, d) = features(params, state, images)
        l_rpn, metrics = rpn_loss(k_rpn, o, d, anchors, gt, gt_valid, config.rpn)
        p_boxes, _, p_valid = proposals(o, d, anchors, size, config.rpn.train_top_n, config.rpn)
        rois = jnp.concatenate([p_boxes, gt], axis=1)  # (B, N + M, 4): proposals and the objects
        roi_valid = jnp.concatenate([p_valid, gt_valid], axis=1)
        boxes, u, t, w = jax.vmap(lambda k, *a: roi_targets(k, *a, config))(
            jax.random.split(k_roi, images.shape[0]), rois, roi_valid, gt, gt_labels, gt_valid)
        logits, deltas = classify(params, f, boxes)
        l_cls = softmax_cross_entropy(logits, u, where=w)
        d_u = jnp.take_along_axis(deltas, jnp.maximum(u - 1, 0)[..., None, None], axis=2)[:, :, 0]  # (B, R, 4)
        l_box = smooth_l1(d_u, t, where=(u > 0) & (w > 0))
        accuracy = jnp.sum((jnp.argmax(logits, -1) == u) * w) / jnp.maximum(jnp.sum(w), 1)
        metrics.update({"rpn": l_rpn, "head_class": l_cls, "head_box": l_box, "head_accuracy": accuracy})
        return l_rpn + l_cls + config.box_weight * l_box, (state, metrics)

    def predict(params, state, images):
        f, _, (o, d) = features(params, state, images)
        boxes, _, valid = proposals(o, d, anchors, size, config.rpn.test_top_n, config.rpn)
        logits, deltas = classify(params, f, boxes)
        p = jax.nn.softmax(logits, axis=-1)[..., 1:]  # (B, R, C)
        p = jnp.where(valid[..., None], p, -jnp.inf)
        decoded = clip_boxes(decode(deltas, boxes[:, :, None], HEAD_WEIGHTS), *size)  # (B, R, C, 4)
        b, r, c = p.shape
        labels = jnp.broadcast_to(jnp.arange(c, dtype=jnp.int32), (b, r, c))
        return select_labelled(decoded.reshape(b, r * c, 4), p.reshape(b, r * c), labels.reshape(b, r * c), c,
                               config.max_detections, config.iou_threshold, config.score_threshold)

    return Detector("faster_rcnn", init, loss, predict)
