"""Pictures of detections: images with their boxes drawn (matplotlib's Figure API, no pyplot)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

COLOURS = ("#ffdd00", "#00e5ff", "#ff3df2", "#7cff00", "#ff7f0e", "#ffffff")


def draw_boxes(ax, image: np.ndarray | None, boxes: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
               scores: np.ndarray | None = None, linestyle: str = "-") -> None:
    """Show ``image`` (H, W, 3) in [0, 1] on ``ax`` (``None``: draw over what is there) with each
    xyxy box (n, 4) outlined in its class's colour and labelled with the class name (and score)."""
    from matplotlib.patches import Rectangle

    if image is not None:
        ax.imshow(np.clip(image, 0, 1), interpolation="nearest", extent=(0, image.shape[1], image.shape[0], 0))
    for k, (box, label) in enumerate(zip(np.asarray(boxes), np.asarray(labels))):
        x1, y1, x2, y2 = (float(v) for v in box)
        colour = COLOURS[int(label) % len(COLOURS)]
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=colour, linewidth=1.2,
                               linestyle=linestyle))
        text = class_names[int(label)] + ("" if scores is None else f" {float(scores[k]):.2f}")
        ax.text(x1, y1 - 0.5, text, color=colour, fontsize=5, va="bottom")
    ax.set_xticks([])
    ax.set_yticks([])


def _grid(n: int, n_cols: int, cell: tuple[float, float], draw) -> "Figure":
    """A Figure of ⌈n / n_cols⌉ × n_cols axes; ``draw(i, ax)`` fills cell i < n, the rest are off."""
    from matplotlib.figure import Figure

    n_rows = -(-n // n_cols)
    fig = Figure(figsize=(cell[0] * n_cols, cell[1] * n_rows))
    for i, ax in enumerate(fig.subplots(n_rows, n_cols, squeeze=False).ravel()):
        if i < n:
            draw(i, ax)
        else:
            ax.axis("off")
    fig.tight_layout(pad=0.3)
    return fig


def sample_grid(images: np.ndarray, targets: np.ndarray, class_names: Sequence[str], n_cols: int = 6):
    """A grid of images with their ground-truth boxes: ``targets`` is a record array of padded
    boxes, labels and valid mask (``jdl.data.shapes``). Returns a matplotlib Figure."""

    def draw(i, ax):
        valid = targets["valid"][i]
        draw_boxes(ax, images[i], targets["boxes"][i][valid], targets["labels"][i][valid], class_names)

    return _grid(len(images), n_cols, (1.6, 1.6), draw)


def prediction_grid(images: np.ndarray, targets: np.ndarray, detections, class_names: Sequence[str],
                    n_cols: int = 6, score_threshold: float = 0.3, titles: Sequence[str] | None = None):
    """Images with their ground truth (dashed) and the detections scoring ≥ ``score_threshold``
    (solid, labelled with class and score). ``targets``: padded records (``jdl.data.shapes``);
    ``detections``: one (boxes, scores, labels) per image (``as_metric_input``). Returns a Figure."""

    def draw(i, ax):
        valid = targets["valid"][i]
        draw_boxes(ax, images[i], targets["boxes"][i][valid], targets["labels"][i][valid], class_names,
                   linestyle="--")
        boxes, scores, labels = (np.asarray(a) for a in detections[i])
        keep = scores >= score_threshold
        draw_boxes(ax, None, boxes[keep], labels[keep], class_names, scores[keep])
        if titles is not None:
            ax.set_title(titles[i], fontsize=6)

    return _grid(len(images), n_cols, (2.0, 2.1), draw)
