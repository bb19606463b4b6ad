"""Every detector by name, for ``experiments/detection.py`` and ``jdl train --model=NAME
--dataset=shapes``: a builder ``(n_classes, widths) -> Detector`` and the training settings
the experiment uses for it. Add a detector here (one line in each table) and both pick it up."""

from __future__ import annotations

from typing import Callable

from jdl.detection.backbone import BackboneConfig
from jdl.detection.detector import Detector
from jdl.detection.train import TrainConfig


def _backbone(widths: tuple | None) -> BackboneConfig:
    return BackboneConfig() if widths is None else BackboneConfig(tuple(widths))


def build_yolo(n_classes: int, widths: tuple | None = None) -> Detector:
    """YOLO v1-style grid detector (``jdl.detection.yolo``) on the stride-8 map: an 8×8 grid."""
    from jdl.detection.yolo import YOLOConfig, yolo

    config = _backbone(widths)
    return yolo(n_classes, YOLOConfig(backbone=config, level=min(2, len(config.widths) - 1)))


def build_ssd(n_classes: int, widths: tuple | None = None) -> Detector:
    """SSD-style detector (``jdl.detection.ssd``) on the stride-4, 8 and 16 maps."""
    from jdl.detection.ssd import SSDConfig, ssd

    config = _backbone(widths)
    levels = tuple(range(1, len(config.widths)))[-3:]
    sizes = SSDConfig().sizes[-len(levels):]
    return ssd(n_classes, SSDConfig(backbone=config, levels=levels, sizes=sizes))


def build_sliding_window(n_classes: int, widths: tuple | None = None) -> Detector:
    """The sliding-window (OverFeat) baseline (``jdl.detection.sliding_window``); ``widths``: its
    classifier's conv1, conv2, conv3 and dense widths (the last four given)."""
    from jdl.detection.sliding_window import SlidingWindowConfig, sliding_window_detector

    config = SlidingWindowConfig(n_classes=n_classes)
    if widths is not None:
        config = SlidingWindowConfig(n_classes=n_classes, widths=_fill(widths, 4))
    return sliding_window_detector(config)


def build_faster_rcnn(n_classes: int, widths: tuple | None = None) -> Detector:
    """Faster R-CNN in miniature (``jdl.detection.two_stage``) on its stride-4 five-conv
    backbone; ``widths``: the backbone's five conv widths (the last five given)."""
    from jdl.detection import two_stage

    config = two_stage.TwoStageConfig(n_classes=n_classes)
    if widths is None:
        return two_stage.two_stage_detector(config)
    return two_stage.two_stage_detector(config, two_stage.small_backbone(_fill(widths, 5)))


def _fill(widths: tuple, n: int) -> tuple:
    """Exactly n widths: the first repeated in front when fewer are given, the last n when more."""
    widths = tuple(widths)
    return ((widths[0],) * (n - len(widths)) + widths)[-n:]


# name → builder(n_classes, backbone widths or None for the default) → Detector.
DETECTORS: dict[str, Callable[..., Detector]] = {
    "yolo": build_yolo,
    "ssd": build_ssd,
    "sliding_window": build_sliding_window,
    "faster_rcnn": build_faster_rcnn,
}

# name → the training settings of experiments/detection.py (TrainConfig() when absent).
SETTINGS: dict[str, TrainConfig] = {
    "yolo": TrainConfig(epochs=20, batch_size=32, learning_rate=2e-3),
    "ssd": TrainConfig(epochs=8, batch_size=32, learning_rate=3e-3),
    # ≈ the 1,200 steps of 16 images of docs/detection.md's two-stage section (that table: no flips, step-based warmup)
    "sliding_window": TrainConfig(epochs=5, batch_size=16, learning_rate=2e-3),
    "faster_rcnn": TrainConfig(epochs=5, batch_size=16, learning_rate=2e-3),
}


def build(name: str, n_classes: int, widths: tuple | None = None) -> Detector:
    """The detector called ``name`` (a key of ``DETECTORS``)."""
    if name not in DETECTORS:
        raise ValueError(f"detection.zoo: unknown detector {name!r}; known: {', '.join(DETECTORS)}")
    return DETECTORS[name](n_classes, widths)
