"""YOLO (v1) in miniature: one S×S grid, each cell predicting B boxes with a confidence and one
set of class probabilities — here from a convolutional head (YOLO v1 used two fully connected
layers; this one has none, as SSD).

Cell (i, j) is responsible for the objects whose centre falls in it. Each of its B predictors
outputs (x, y, √w, √h, C): the centre's offset within the cell in [0, 1], the square roots of
width and height as fractions of the image (so that an error on a small box costs more than the
same error on a large one), and the confidence Pr(object)·IoU(pred, truth); the cell also outputs
Pr(class_c | object). Sigmoids keep x, y, √w, √h, C in (0, 1), a softmax gives the classes.
The loss is YOLO v1's sum of squared errors, with 𝟙ᵒᵇʲ_ij = 1 for the predictor j of cell i
that has the highest IoU with the cell's object:

    λ_coord Σ_ij 𝟙ᵒᵇʲ_ij [(x_i − x̂_ij)² + (y_i − ŷ_ij)² + (√w_i − √ŵ_ij)² + (√h_i − √ĥ_ij)²]
    + Σ_ij 𝟙ᵒᵇʲ_ij (C_ij − Ĉ_ij)² + λ_noobj Σ_ij 𝟙ⁿᵒᵒᵇʲ_ij Ĉ_ij² + Σ_i 𝟙ᵒᵇʲ_i Σ_c (p_i(c) − p̂_i(c))²,

with C_ij = IoU(predicted box, true box) (no gradient through it), λ_coord = 5 and λ_noobj = 0.5
(YOLO v1's values: most cells hold no object, and their confidence gradients would otherwise
swamp the few that do); summed over cells and averaged over images. At test time the score of
class c for a box is Ĉ_ij·p̂_i(c) = Pr(class_c)·IoU, followed by class-wise NMS.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp

from jdl.detection import backbone as bb
from jdl.detection.boxes import clip_boxes, cxcywh_to_xyxy, xyxy_to_cxcywh
from jdl.detection.detector import Detector
from jdl.detection.postprocess import SelectConfig, select
from jdl.metrics import box_area


@dataclass(frozen=True)
class YOLOConfig:
    """The grid is the backbone map ``level`` (stride 8 → S = 8 for 64×64 images); B =
    ``boxes_per_cell``; the loss weights ``lambda_coord`` and ``lambda_noobj``; ``head_width``
    hidden channels of the 3×3 head (0: one 3×3 conv)."""
    backbone: bb.BackboneConfig = field(default_factory=bb.BackboneConfig)
    level: int = 2
    boxes_per_cell: int = 2
    lambda_coord: float = 5.0
    lambda_noobj: float = 0.5
    head_width: int = 64
    image_size: int = 64
    select: SelectConfig = field(default_factory=SelectConfig)


def grid_size(config: YOLOConfig) -> int:
    """S, the cells per side: image size / the stride of the map the head reads."""
    return config.image_size // bb.strides(config.backbone)[config.level]


def yolo_targets(boxes: jax.Array, labels: jax.Array, valid: jax.Array, grid: int, image_size: float) -> dict:
    """One image's targets on the S×S grid: the object of cell (i, j) is the first valid box whose
    centre (c_x, c_y) lies in it, i = ⌊c_y/s⌋, j = ⌊c_x/s⌋ (s = image_size/S), with

        x = c_x/s − j,  y = c_y/s − i,  √w = √(w/image_size),  √h = √(h/image_size).

    Returns {obj (S², ) bool, coords (S², 4) = (x, y, √w, √h), label (S²,), box (S², 4) xyxy},
    cells in row-major order (cell i·S + j). Shapes: boxes (K, 4), labels (K,), valid (K,)."""
    s = image_size / grid
    centre = xyxy_to_cxcywh(boxes)  # (K, 4)
    col = jnp.clip(jnp.floor(centre[:, 0] / s), 0, grid - 1)
    row = jnp.clip(jnp.floor(centre[:, 1] / s), 0, grid - 1)
    cell = (row * grid + col).astype(jnp.int32)  # (K,)
    in_cell = (jnp.arange(grid * grid)[:, None] == cell[None, :]) & valid[None, :]  # (S², K)
    chosen = jnp.argmax(in_cell, axis=1)  # first such box
    coords = jnp.stack([centre[:, 0] / s - col, centre[:, 1] / s - row,
                        jnp.sqrt(centre[:, 2] / image_size), jnp.sqrt(centre[:, 3] / image_size)], axis=-1)
    return {"obj": jnp.any(in_cell, axis=1), "coords": coords[chosen], "label": labels[chosen],
            "box": boxes[chosen]}


def yolo_boxes(coords: jax.Array, grid: int, image_size: float) -> jax.Array:
    """Decode (x, y, √w, √h) per cell into xyxy boxes: c_x = (j + x)·s, c_y = (i + y)·s,
    w = (√w)²·image_size, h = (√h)²·image_size, for cell i·S + j (s = image_size/S).
    Shapes: coords (..., S², B, 4) → (..., S², B, 4)."""
    s = image_size / grid
    cell = jnp.arange(grid * grid).reshape((1,) * (coords.ndim - 3) + (grid * grid, 1))  # (..., S², 1)
    row, col = (cell // grid).astype(coords.dtype), (cell % grid).astype(coords.dtype)
    cxcywh = jnp.stack([(col + coords[..., 0]) * s, (row + coords[..., 1]) * s,
                        coords[..., 2] ** 2 * image_size, coords[..., 3] ** 2 * image_size], axis=-1)
    return cxcywh_to_xyxy(cxcywh)


def paired_iou(a: jax.Array, b: jax.Array) -> jax.Array:
    """IoU of box a_n with box b_n (not every pair): I/(|a| + |b| − I). Shapes: (..., 4) → (...)."""
    wh = jnp.clip(jnp.minimum(a[..., 2:], b[..., 2:]) - jnp.maximum(a[..., :2], b[..., :2]), 0.0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a) + box_area(b) - inter
    return jnp.where(union > 0, inter / jnp.where(union > 0, union, 1.0), 0.0)


def activate(raw: jax.Array, n_classes: int, boxes_per_cell: int):
    """The head's output → (coords (N, S², B, 4) = sigmoid(x, y, √w, √h), confidence (N, S², B) =
    sigmoid, class probabilities (N, S², C) = softmax). Shapes: raw (N, S, S, B·5 + C)."""
    n = raw.shape[0]
    flat = raw.reshape(n, -1, raw.shape[-1])  # (N, S², B·5 + C)
    per_box = jax.nn.sigmoid(flat[..., :5 * boxes_per_cell].reshape(n, flat.shape[1], boxes_per_cell, 5))
    return per_box[..., :4], per_box[..., 4], jax.nn.softmax(flat[..., 5 * boxes_per_cell:], axis=-1)


def yolo_loss(coords, conf, probs, targets: dict, config: YOLOConfig) -> tuple[jax.Array, dict]:
    """YOLO v1's loss (module docstring), averaged over images.
    Shapes: coords (N, S², B, 4), conf (N, S², B), probs (N, S², C) as ``activate`` returns them;
    targets {boxes (N, K, 4), labels (N, K), valid (N, K)} → (scalar, metrics)."""
    grid = grid_size(config)
    t = jax.vmap(lambda b, c, v: yolo_targets(b, c, v, grid, config.image_size))(
        targets["boxes"], targets["labels"], targets["valid"])
    iou = jax.lax.stop_gradient(paired_iou(yolo_boxes(coords, grid, config.image_size), t["box"][:, :, None]))
    best = jax.nn.one_hot(jnp.argmax(iou, axis=-1), conf.shape[-1], dtype=bool)  # (N, S², B)
    resp = best & t["obj"][..., None]  # 𝟙ᵒᵇʲ_ij
    n = conf.shape[0]
    coord = config.lambda_coord * jnp.sum(jnp.where(resp, jnp.sum((coords - t["coords"][:, :, None]) ** 2, -1), 0.0))
    obj = jnp.sum(jnp.where(resp, (iou - conf) ** 2, 0.0))
    noobj = config.lambda_noobj * jnp.sum(jnp.where(resp, 0.0, conf ** 2))
    onehot = jax.nn.one_hot(t["label"], probs.shape[-1], dtype=probs.dtype)
    cls = jnp.sum(jnp.where(t["obj"][..., None], (probs - onehot) ** 2, 0.0))
    metrics = {"coord_loss": coord / n, "obj_loss": obj / n, "noobj_loss": noobj / n, "class_loss": cls / n,
               "mean_iou": jnp.sum(jnp.where(resp, iou, 0.0)) / jnp.maximum(jnp.sum(resp), 1)}
    return (coord + obj + noobj + cls) / n, metrics


def yolo_detections(coords, conf, probs, config: YOLOConfig):
    """Boxes of every predictor, scored Ĉ_ij·p̂_i(c) per class, then class-wise NMS and top-D.
    Shapes: coords (N, S², B, 4), conf (N, S², B), probs (N, S², C) → Detections (N, D, ...)."""
    n, cells, b, _ = coords.shape
    boxes = clip_boxes(yolo_boxes(coords, grid_size(config), config.image_size), config.image_size, config.image_size)
    scores = conf[..., None] * probs[:, :, None, :]  # (N, S², B, C)
    return select(boxes.reshape(n, cells * b, 4), scores.reshape(n, cells * b, -1), config.select)


def yolo(n_classes: int, config: YOLOConfig = YOLOConfig()) -> Detector:
    """The YOLO detector: ``backbone`` → its map ``config.level`` → ``conv_head`` with B·5 + C
    channels per cell. Returns ``Detector('yolo', init, loss, predict)``."""
    body = bb.backbone(config.backbone)
    head = bb.conv_head(config.head_width, config.boxes_per_cell * 5 + n_classes)

    def init(key, images):
        params, state = body.init(jax.random.fold_in(key, 0), images)
        maps = jax.eval_shape(lambda p, s, x: body.apply(p, s, x)[0], params, state, images)
        return {"backbone": params, "head": head.init(jax.random.fold_in(key, 1), maps[config.level])[0]}, state

    def outputs(params, state, images, train):
        maps, state = body.apply(params["backbone"], state, images, train=train)
        raw = head.apply(params["head"], {}, maps[config.level])[0]  # (N, S, S, B·5 + C)
        return activate(raw, n_classes, config.boxes_per_cell), state

    def loss(params, state, images, targets, key):
        (coords, conf, probs), state = outputs(params, state, images, True)
        value, metrics = yolo_loss(coords, conf, probs, targets, config)
        return value, (state, metrics)

    def predict(params, state, images):
        (coords, conf, probs), _ = outputs(params, state, images, False)
        return yolo_detections(coords, conf, probs, config)

    return Detector("yolo", init, loss, predict)
