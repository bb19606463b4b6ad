"""The region proposal network of Faster R-CNN: objectness and box deltas for 9 anchors at every
position of the last feature map, its loss, and proposals by decoding and NMS.

The course: "slide a small window (3×3) over the conv5 layer, predict object / no object,
regress bounding box coordinates with reference to anchors (3 scales × 3 aspect ratios)". A
3×3 convolution (+ ReLU) makes an intermediate feature per position; two 1×1 convolutions read
from it A objectness logits and 4A box deltas (A = 9 anchors, ``jdl.detection.anchors``).
Anchors are assigned to ground truth by IoU (≥ 0.7 positive, < 0.3 negative, each object's best
anchor positive) and a balanced minibatch of them trains

    L_rpn = (1/N_cls) Σ_{a ∈ S} BCE(σ(o_a), p*_a) + λ·(1/N_pos) Σ_{a ∈ S, p*_a = 1} smooth_L1(d_a − t_a),

S the sampled anchors (N_cls of them), p*_a ∈ {0, 1} their labels, t_a = encode(g_{m(a)}, a).
Proposals are the decoded boxes of the best-scoring anchors after NMS, a fixed number per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from jdl.core import Module
from jdl.detection.anchors import DEFAULT_RATIOS, DEFAULT_SIZES
from jdl.detection.assign import POSITIVE, assign, subsample
from jdl.detection.boxes import clip_boxes, decode, encode
from jdl.detection.losses import smooth_l1
from jdl.detection.candidates import select_labelled
from jdl.nn import Conv2D, parallel, relu, serial


@dataclass(frozen=True)
class RPNConfig:
    """Anchors (``sizes`` × ``ratios``); training: IoU thresholds ``pos_iou``/``neg_iou``,
    ``batch_per_image`` sampled anchors with at most ``positive_fraction`` positives, smooth-L1
    ``beta``, box weight λ ``box_weight``; proposals: the ``pre_nms_top_n`` best anchors, NMS at
    ``nms_iou``, boxes narrower than ``min_size`` dropped, ``train_top_n``/``test_top_n`` kept."""
    sizes: tuple = DEFAULT_SIZES
    ratios: tuple = DEFAULT_RATIOS
    width: int = 64
    pos_iou: float = 0.7
    neg_iou: float = 0.3
    batch_per_image: int = 64
    positive_fraction: float = 0.5
    beta: float = 1.0 / 9
    box_weight: float = 1.0
    pre_nms_top_n: int = 200
    nms_iou: float = 0.7
    min_size: float = 1.0
    train_top_n: int = 32
    test_top_n: int = 50

    @property
    def n_anchors(self) -> int:
        return len(self.sizes) * len(self.ratios)


def RPNHead(n_anchors: int = 9, width: int = 64) -> Module:
    """The RPN head: h = ReLU(conv3×3(x)), objectness o = conv1×1(h) (A channels), deltas
    d = conv1×1(h) (4A channels). Returns the pair (o, d).
    Shapes: x (B, H_f, W_f, C) → o (B, H_f, W_f, A), d (B, H_f, W_f, 4A)."""
    return serial(Conv2D(width, 3), relu, parallel(Conv2D(n_anchors, 1), Conv2D(4 * n_anchors, 1)))


def flatten_outputs(objectness: jax.Array, deltas: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Head outputs in the anchors' (row, column, anchor) order.
    Shapes: (B, H_f, W_f, A), (B, H_f, W_f, 4A) → (B, H_f·W_f·A), (B, H_f·W_f·A, 4)."""
    b = objectness.shape[0]
    return objectness.reshape(b, -1), deltas.reshape(b, -1, 4)


def rpn_loss(key: jax.Array, objectness: jax.Array, deltas: jax.Array, anchors: jax.Array,
             gt_boxes: jax.Array, gt_valid: jax.Array, config: RPNConfig) -> tuple[jax.Array, dict]:
    """L_rpn of the module docstring: ``assign`` (pos_iou, neg_iou, best anchor forced),
    ``subsample`` (batch_per_image, positive_fraction) per image, the objectness BCE averaged over
    the sampled anchors of the batch, smooth-L1 (β = ``beta``) averaged over its positives.
    Returns (L_rpn, {rpn_objectness, rpn_box, rpn_positives}).
    Shapes: objectness (B, N), deltas (B, N, 4), anchors (N, 4), gt_boxes (B, M, 4), gt_valid (B, M)."""
    matched, label = jax.vmap(assign, in_axes=(None, 0, 0, None, None))(
        anchors, gt_boxes, gt_valid, config.pos_iou, config.neg_iou)  # (B, N)
    label = jax.vmap(lambda k, lab: subsample(k, lab, config.batch_per_image, config.positive_fraction))(
        jax.random.split(key, label.shape[0]), label)
    sampled, positive = label >= 0, label == POSITIVE
    z, p = objectness, positive.astype(objectness.dtype)
    bce = jnp.maximum(z, 0) - z * p + jnp.log1p(jnp.exp(-jnp.abs(z)))  # (B, N), stable BCE on logits
    l_obj = jnp.sum(bce * sampled) / jnp.maximum(jnp.sum(sampled), 1)
    g = jnp.take_along_axis(gt_boxes, matched[..., None], axis=1)  # (B, N, 4)
    g = jnp.where(positive[..., None], g, anchors[None])  # finite targets everywhere
    t = encode(g, anchors[None])
    l_box = smooth_l1(deltas, t, beta=config.beta, where=positive)
    metrics = {"rpn_objectness": l_obj, "rpn_box": l_box, "rpn_positives": jnp.mean(jnp.sum(positive, 1))}
    return l_obj + config.box_weight * l_box, metrics


def proposals(objectness: jax.Array, deltas: jax.Array, anchors: jax.Array, image_size: tuple[int, int],
              top_n: int, config: RPNConfig) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Region proposals: boxes b_a = clip(decode(d_a, a)) of the ``pre_nms_top_n`` anchors of
    highest objectness o_a, boxes under ``min_size`` wide or high dropped, NMS at ``nms_iou``,
    then the ``top_n`` best survivors. Gradients are stopped: the RoI head treats proposals as
    given boxes (the approximate joint training of Faster R-CNN).
    Returns (boxes, scores, valid), valid False where fewer than top_n survived.
    Shapes: objectness (B, N), deltas (B, N, 4), anchors (N, 4) → (B, top_n, 4), (B, top_n), (B, top_n)."""
    objectness, deltas = jax.lax.stop_gradient(objectness), jax.lax.stop_gradient(deltas)
    boxes = clip_boxes(decode(deltas, anchors[None]), *image_size)  # (B, N, 4)
    wh = boxes[..., 2:] - boxes[..., :2]
    scores = jnp.where(jnp.all(wh >= config.min_size, -1), objectness, -jnp.inf)
    out = select_labelled(boxes, scores, jnp.zeros(scores.shape, jnp.int32), 1, top_n, config.nms_iou, None,
                          config.pre_nms_top_n)
    return out.boxes, out.scores, out.valid
