"""Shapes: an offline object-detection data set, generated deterministically and cached.

Each example is a 64×64 RGB image holding 1–6 objects of four classes (``CLASSES``: square,
circle, triangle, cross) of varied size (7 to 28 pixels across, log-uniform, so many are
small), colour and overlap, drawn in a random order (later objects occlude earlier ones) on a
textured background (a muted colour with stripes, a checkerboard or smooth blobs, plus pixel
noise). Every object's box is the tight bounding box of its own full mask, in continuous pixel
coordinates (x1, y1, x2, y2): pixel (row i, column j) covers [j, j + 1) × [i, i + 1), so a box
spans whole pixels, lies inside [0, 64]², and is the box of what was drawn (occluded parts
included). A placement is refused when its box overlaps an earlier box with IoU > 0.4 or
leaves an earlier object less than half visible, so no object disappears behind others.

Image i of split s is drawn from ``numpy.random.default_rng((seed, s, i))`` alone (pure numpy
rasterization, PCG64 streams), so the same seed gives the same bytes on every machine and any
image can be regenerated on its own (``scene``). Targets are padded to ``MAX_OBJECTS`` in a
numpy record array (``TARGET_DTYPE``: ``boxes`` (K, 4) float32, ``labels`` (K,) int32, −1 where
padded, ``valid`` (K,) bool) so that ``y[idx]`` and ``jdl.data.batches`` work unchanged.
The published sets (4,500 training and 1,000 test images, seed 0) are cached as uint8 images in
``<data root>/shapes/shapes_v1_seed0.npz`` (about 68 MB) and reused.
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

from jdl.data.files import cached_npz, data_root

CLASSES = ("square", "circle", "triangle", "cross")
SIZE, MAX_OBJECTS = 64, 6
MIN_EXTENT, MAX_EXTENT = 7.0, 28.0
MAX_BOX_IOU, MIN_VISIBLE = 0.4, 0.5
PUBLISHED = {"train": 4500, "test": 1000}
SPLIT_CODES = {"train": 0, "test": 1}
SEED, VERSION = 0, 1
TARGET_DTYPE = np.dtype([("boxes", np.float32, (MAX_OBJECTS, 4)), ("labels", np.int32, (MAX_OBJECTS,)),
                         ("valid", np.bool_, (MAX_OBJECTS,))])


def object_mask(label: int, cx: float, cy: float, extent: float, size: int = SIZE) -> np.ndarray:
    """The pixels of one object: a pixel is inside when its centre (j + ½, i + ½) is.

    square |dx|, |dy| ≤ e/2; circle dx² + dy² ≤ (e/2)²; triangle (apex up) −e/2 ≤ dy ≤ e/2 and
    |dx| ≤ (dy + e/2)/2; cross: a plus of two e × e/3 bars; (dx, dy) = centre − (cx, cy), e the
    extent. Shapes: → (size, size) bool.
    """
    coords = np.arange(size) + 0.5
    dx, dy = coords[None, :] - cx, coords[:, None] - cy  # (1, W), (H, 1)
    half = extent / 2
    if label == 0:
        return (np.abs(dx) <= half) & (np.abs(dy) <= half)
    if label == 1:
        return dx ** 2 + dy ** 2 <= half ** 2
    if label == 2:
        return (dy >= -half) & (dy <= half) & (np.abs(dx) <= (dy + half) / 2)
    if label == 3:
        bar = extent / 6
        return (((np.abs(dx) <= half) & (np.abs(dy) <= bar)) | ((np.abs(dx) <= bar) & (np.abs(dy) <= half)))
    raise ValueError(f"shapes.object_mask: label must be in 0..{len(CLASSES) - 1}, got {label}")


def mask_box(mask: np.ndarray) -> np.ndarray:
    """The tight box of a mask: (min column, min row, max column + 1, max row + 1), float32."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], np.float32)


def background(rng: np.random.Generator, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """A textured background: a muted base colour (each channel in [0.25, 0.65]) times
    (1 + a·t(i, j)) for a texture t in [−1, 1] (stripes, checkerboard or smooth blobs,
    a ~ U[0.1, 0.25]), plus N(0, 0.03²) pixel noise, clipped to [0, 1].
    Returns the image (size, size, 3) float64 and the base colour (3,)."""
    base = rng.uniform(0.25, 0.65, 3)
    i, j = np.mgrid[0:size, 0:size].astype(np.float64)
    kind = rng.integers(3)
    if kind == 0:
        angle, period = rng.uniform(0, np.pi), rng.uniform(4, 12)
        t = np.sin(2 * np.pi * (j * np.cos(angle) + i * np.sin(angle)) / period)
    elif kind == 1:
        cell = rng.integers(4, 12)
        t = 2.0 * (((i // cell) + (j // cell)) % 2) - 1.0
    else:
        coarse = rng.uniform(-1, 1, (5, 5))
        t = np.kron(coarse, np.ones((size // 4, size // 4)))[:size, :size]
        t = np.clip(t + np.roll(t, size // 8, 0) + np.roll(t, size // 8, 1), -1, 1)
    a = rng.uniform(0.1, 0.25)
    image = base * (1 + a * t)[..., None] + rng.normal(0, 0.03, (size, size, 3))
    return np.clip(image, 0, 1), base


def place(rng: np.random.Generator, masks: list, boxes: list) -> tuple[int, np.ndarray, np.ndarray] | None:
    """Draw one object (label, centre, extent) that keeps every earlier object at least half
    visible and overlaps no earlier box with IoU > 0.4; None after 30 refused tries."""
    from jdl.metrics import box_iou

    for _ in range(30):
        label = int(rng.integers(len(CLASSES)))
        extent = float(np.exp(rng.uniform(np.log(MIN_EXTENT), np.log(MAX_EXTENT))))
        cx, cy = rng.uniform(extent / 2, SIZE - extent / 2, 2)
        mask = object_mask(label, cx, cy, extent)
        box = mask_box(mask)
        if boxes and box_iou(box[None], np.stack(boxes)).max() > MAX_BOX_IOU:
            continue
        cover = mask.copy()
        ok = True
        for k in range(len(masks) - 1, -1, -1):  # later objects hide earlier ones
            if (masks[k] & ~cover).sum() < MIN_VISIBLE * masks[k].sum():
                ok = False
                break
            cover |= masks[k]
        if ok:
            return label, mask, box
    return None


def scene(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
    """One image: background, then 1–6 objects in a solid colour each (at least 0.45 from the
    background's base colour in RGB), each painted over the ones before it.

    Returns image (64, 64, 3) uint8, boxes (n, 4) float32, labels (n,) int32 and the n masks
    (64, 64) bool, in drawing order.
    """
    image, base = background(rng)
    masks, boxes, labels = [], [], []
    for _ in range(int(rng.integers(1, MAX_OBJECTS + 1))):
        placed = place(rng, masks, boxes)
        if placed is None:
            continue
        label, mask, box = placed
        colour = rng.uniform(0, 1, 3)
        while np.linalg.norm(colour - base) < 0.45:
            colour = rng.uniform(0, 1, 3)
        image[mask] = colour
        masks.append(mask)
        boxes.append(box)
        labels.append(label)
    pixels = np.round(image * 255).astype(np.uint8)
    return pixels, np.stack(boxes).astype(np.float32), np.asarray(labels, np.int32), masks


def pad_targets(boxes: list, labels: list, max_objects: int = MAX_OBJECTS) -> np.ndarray:
    """Per-image boxes (n_i, 4) and labels (n_i,) → one record array (N,) of ``TARGET_DTYPE``
    shape: the first n_i slots hold the objects, the rest boxes 0, labels −1, valid False.

    Args:
      boxes: N arrays (n_i, 4) xyxy; labels: N arrays (n_i,) of class indices;
      max_objects: K, the slots per image (n_i ≤ K).
    Shapes: N lists → (N,) records with boxes (K, 4), labels (K,), valid (K,), K = max_objects.
    """
    if len(boxes) != len(labels):
        raise ValueError(f"pad_targets: {len(boxes)} box arrays but {len(labels)} label arrays")
    dtype = np.dtype([("boxes", np.float32, (max_objects, 4)), ("labels", np.int32, (max_objects,)),
                      ("valid", np.bool_, (max_objects,))])
    y = np.zeros(len(boxes), dtype)
    y["labels"] = -1
    for n, (b, c) in enumerate(zip(boxes, labels)):
        b, c = np.asarray(b, np.float32).reshape(-1, 4), np.asarray(c, np.int32).reshape(-1)
        if len(b) != len(c) or len(b) > max_objects:
            raise ValueError(f"pad_targets: image {n} has {len(b)} boxes and {len(c)} labels; they must "
                             f"be equal and at most max_objects={max_objects}")
        y["boxes"][n, :len(b)], y["labels"][n, :len(c)], y["valid"][n, :len(b)] = b, c, True
    return y


def unpad(y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Padded targets → one (boxes (n_i, 4), labels (n_i,)) per image: the ``ground_truths``
    argument of ``jdl.metrics.mean_average_precision``."""
    return [(r["boxes"][r["valid"]], r["labels"][r["valid"]]) for r in y]


def as_arrays(y: np.ndarray) -> dict[str, np.ndarray]:
    """A record array of targets as a dict of plain arrays {boxes (N, K, 4), labels (N, K),
    valid (N, K)}, ready for ``jax.jit``."""
    return {name: np.ascontiguousarray(y[name]) for name in ("boxes", "labels", "valid")}


def generate(split: str, n: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Images 0..n−1 of ``split`` ('train' or 'test'), image i from ``default_rng((seed, s, i))``.

    Returns images (n, 64, 64, 3) uint8 and targets (n,) of ``TARGET_DTYPE``.
    """
    if split not in SPLIT_CODES:
        raise ValueError(f"shapes.generate: split must be one of {tuple(SPLIT_CODES)}, got {split!r}")
    images, boxes, labels = np.zeros((n, SIZE, SIZE, 3), np.uint8), [], []
    for i in range(n):
        images[i], b, c, _ = scene(np.random.default_rng((seed, SPLIT_CODES[split], i)))
        boxes.append(b)
        labels.append(c)
    return images, pad_targets(boxes, labels)


def valid(arrays, sizes) -> bool:
    """Whether cached arrays hold ``sizes`` images per split with well-formed targets."""
    try:
        return all(arrays[f"x_{s}"].shape == (n, SIZE, SIZE, 3) and arrays[f"x_{s}"].dtype == np.uint8
                   and arrays[f"y_{s}"].dtype == TARGET_DTYPE and arrays[f"y_{s}"].shape == (n,)
                   and arrays[f"y_{s}"]["valid"][:, 0].all() for s, n in sizes.items())
    except (KeyError, ValueError, OSError, zipfile.BadZipFile):
        return False


def cached(data_dir: str | None = None, sizes: dict | None = None, seed: int = SEED) -> dict[str, np.ndarray]:
    """The generated splits {x_train, y_train, x_test, y_test}, read from the cache when it holds
    a valid copy, else generated (about 5 s for the published sizes) and written atomically (a
    cache folder that cannot be written is skipped)."""
    sizes = dict(PUBLISHED if sizes is None else sizes)
    tag = "" if sizes == PUBLISHED else "_" + "_".join(f"{s}{n}" for s, n in sorted(sizes.items()))
    path = os.path.join(data_root(data_dir), "shapes", f"shapes_v{VERSION}_seed{seed}{tag}.npz")

    def generate_all():
        return {k: v for s, n in sizes.items() for k, v in zip((f"x_{s}", f"y_{s}"), generate(s, n, seed))}

    return cached_npz(path, generate_all, lambda arrays: valid(arrays, sizes))


def shapes(split: str, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The published shapes split ('train': 4,500 images, 'test': 1,000), generated once and
    cached. Returns x (N, 64, 64, 3) float32 in [0, 1] and y (N,) records of ``TARGET_DTYPE``."""
    arrays = cached(data_dir)
    return arrays[f"x_{split}"].astype(np.float32) / 255.0, arrays[f"y_{split}"]
