"""SSD (Single Shot MultiBox Detector) in miniature: anchors on several feature maps, read off by
3×3 convolutions — no fully connected layer.

Like YOLO it predicts boxes directly from convolutional maps in one pass; unlike YOLO it uses
no fully connected layers and predicts boxes of different sizes from maps of different
resolutions, each relative to predefined reference shapes (anchors, ``jdl.detection.anchors``).
At every position of map ℓ and each of its A anchors a 3×3 convolution outputs C + 1 class
scores (class 0 is the background) and 4 box offsets d (``jdl.detection.boxes.encode``'s
parameterization, SSD's variances (0.1, 0.1, 0.2, 0.2), i.e. weights (10, 10, 5, 5)).

Training: anchors are matched to ground truth by IoU (``jdl.detection.assign``: IoU ≥ 0.5, plus
each object's best anchor), and with P the positives, t_a the encoded box of anchor a's object,
y_a its class + 1 (0 for negatives),

    L = (1/|P|)·[ Σ_{a ∈ P} CE(z_a, y_a) + Σ_{a ∈ H} CE(z_a, 0) + α·Σ_{a ∈ P} smooth_L1(d_a − t_a) ],

where H, the hard negatives, are the 3·|P_i| negatives of each image i with the largest
background loss CE(z_a, 0) (hard-negative mining: the easy background would swamp the loss).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp

from jdl.detection import backbone as bb
from jdl.detection.anchors import anchors as make_anchors
from jdl.detection.assign import POSITIVE, assign
from jdl.detection.boxes import clip_boxes, decode, encode
from jdl.detection.detector import Detector
from jdl.detection.losses import smooth_l1
from jdl.detection.postprocess import SelectConfig, select

WEIGHTS = (10.0, 10.0, 5.0, 5.0)  # SSD's variances (0.1, 0.1, 0.2, 0.2) as encode weights


@dataclass(frozen=True)
class SSDConfig:
    """Heads on the backbone maps ``levels`` (indices into its outputs), anchor ``sizes`` per
    level (pixels) × ``ratios``; IoU ≥ ``match_threshold`` is a positive; ``neg_pos_ratio``
    hard negatives per positive; box loss weight ``alpha``; ``head_width`` hidden channels in the heads (0: one 3×3 conv)."""
    backbone: bb.BackboneConfig = field(default_factory=bb.BackboneConfig)
    levels: tuple = (1, 2, 3)
    sizes: tuple = ((8.0, 11.0), (16.0, 22.0), (30.0, 40.0))
    ratios: tuple = (0.5, 1.0, 2.0)
    match_threshold: float = 0.5
    neg_pos_ratio: int = 3
    alpha: float = 1.0
    head_width: int = 0
    image_size: int = 64
    select: SelectConfig = field(default_factory=SelectConfig)


def ssd_anchors(config: SSDConfig) -> jax.Array:
    """All anchors, level by level, each level ordered (row, column, anchor) as its head output.
    Shapes: → (N, 4) xyxy, N = Σ_ℓ H_ℓ·W_ℓ·A, A = len(sizes[ℓ])·len(ratios)."""
    strides = bb.strides(config.backbone)
    parts = []
    for level, sizes in zip(config.levels, config.sizes):
        s = strides[level]
        parts.append(make_anchors((config.image_size // s, config.image_size // s), s, sizes, config.ratios))
    return jnp.concatenate(parts)


def hard_negatives(loss: jax.Array, negative: jax.Array, n_keep: jax.Array) -> jax.Array:
    """Hard-negative mining: per image, the ``n_keep`` negatives of largest ``loss``
    (rank r_a of a negative among the image's negatives by decreasing loss; keep r_a < n_keep).
    Shapes: loss (B, N), negative (B, N) bool, n_keep (B,) int → (B, N) bool."""
    masked = jnp.where(negative, loss, -jnp.inf)
    rank = jnp.argsort(jnp.argsort(-masked, axis=1, stable=True), axis=1, stable=True)  # (B, N)
    return negative & (rank < n_keep[:, None])


def ssd_loss(logits: jax.Array, deltas: jax.Array, anchors: jax.Array, targets: dict,
             config: SSDConfig) -> tuple[jax.Array, dict]:
    """SSD's loss (module docstring) from the head outputs.
    Shapes: logits (B, N, C+1), deltas (B, N, 4), anchors (N, 4), targets {boxes (B, K, 4),
    labels (B, K), valid (B, K)} → (scalar loss, {'class_loss', 'box_loss', 'positives'})."""
    matched, label = jax.vmap(assign, in_axes=(None, 0, 0, None, None))(
        anchors, targets["boxes"], targets["valid"], config.match_threshold, config.match_threshold)  # (B, N)
    positive = label == POSITIVE
    gt_boxes = jnp.take_along_axis(targets["boxes"], matched[..., None], axis=1)  # (B, N, 4)
    gt_class = jnp.take_along_axis(targets["labels"], matched, axis=1) + 1  # (B, N)
    y = jnp.where(positive, gt_class, 0)
    log_p = jax.nn.log_softmax(logits, axis=-1)
    ce = -jnp.take_along_axis(log_p, y[..., None], axis=-1)[..., 0]  # (B, N)
    n_pos = jnp.sum(positive, axis=1)  # (B,)
    hard = hard_negatives(jax.lax.stop_gradient(ce), ~positive, config.neg_pos_ratio * n_pos)
    t = encode(jnp.where(positive[..., None], gt_boxes, anchors[None]), anchors[None], WEIGHTS)
    total = jnp.maximum(jnp.sum(n_pos), 1).astype(logits.dtype)
    class_loss = jnp.sum(jnp.where(positive | hard, ce, 0.0)) / total
    box_loss = smooth_l1(deltas, t, where=positive, reduction="sum") / total
    loss = class_loss + config.alpha * box_loss
    return loss, {"class_loss": class_loss, "box_loss": box_loss, "positives": jnp.sum(n_pos) / logits.shape[0]}


def ssd_detections(logits: jax.Array, deltas: jax.Array, anchors: jax.Array, config: SSDConfig):
    """Decode the head outputs: p = softmax(z), boxes ĝ = decode(d, anchors) clipped to the image,
    class scores p_1..p_C (the background's p_0 dropped), then class-wise NMS and top-D
    (``jdl.detection.postprocess.select``).
    Shapes: logits (B, N, C+1), deltas (B, N, 4), anchors (N, 4) → Detections (B, D, ...)."""
    boxes = clip_boxes(decode(deltas, anchors[None], WEIGHTS), config.image_size, config.image_size)
    scores = jax.nn.softmax(logits, axis=-1)[..., 1:]
    return select(boxes, scores, config.select)


def ssd(n_classes: int, config: SSDConfig = SSDConfig()) -> Detector:
    """The SSD detector: ``backbone`` maps → per level a class head (A·(C+1) channels) and a box
    head (A·4 channels), each ``conv_head``; outputs concatenated over levels in anchor order.
    Returns ``Detector('ssd', init, loss, predict)`` (``jdl.detection.detector``)."""
    if len(config.levels) != len(config.sizes):
        raise ValueError(f"ssd: one tuple of anchor sizes per level; got levels {config.levels} "
                         f"and sizes {config.sizes}")
    body = bb.backbone(config.backbone)
    names = bb.level_names(len(config.levels))
    n_anchors = [len(s) * len(config.ratios) for s in config.sizes]
    cls_heads = [bb.conv_head(config.head_width, a * (n_classes + 1)) for a in n_anchors]
    box_heads = [bb.conv_head(config.head_width, a * 4) for a in n_anchors]
    anchors = ssd_anchors(config)

    def init(key, images):
        params, state = body.init(jax.random.fold_in(key, 0), images)
        maps = jax.eval_shape(lambda p, s, x: body.apply(p, s, x)[0], params, state, images)
        heads = {}
        for k, (n, level) in enumerate(zip(names, config.levels)):
            heads[n] = {"cls": cls_heads[k].init(jax.random.fold_in(key, 2 * k + 1), maps[level])[0],
                        "box": box_heads[k].init(jax.random.fold_in(key, 2 * k + 2), maps[level])[0]}
        return {"backbone": params, "heads": heads}, state

    def outputs(params, state, images, train):
        maps, state = body.apply(params["backbone"], state, images, train=train)
        logits, deltas = [], []
        for k, (n, level) in enumerate(zip(names, config.levels)):
            z = cls_heads[k].apply(params["heads"][n]["cls"], {}, maps[level])[0]  # (B, H, W, A·(C+1))
            d = box_heads[k].apply(params["heads"][n]["box"], {}, maps[level])[0]  # (B, H, W, A·4)
            logits.append(z.reshape(z.shape[0], -1, n_classes + 1))  # (B, H·W·A, C+1)
            deltas.append(d.reshape(d.shape[0], -1, 4))  # (B, H·W·A, 4)
        return jnp.concatenate(logits, axis=1), jnp.concatenate(deltas, axis=1), state

    def loss(params, state, images, targets, key):
        logits, deltas, state = outputs(params, state, images, True)
        value, metrics = ssd_loss(logits, deltas, anchors, targets, config)
        return value, (state, metrics)

    def predict(params, state, images):
        logits, deltas, _ = outputs(params, state, images, False)
        return ssd_detections(logits, deltas, anchors, config)

    return Detector("ssd", init, loss, predict)
