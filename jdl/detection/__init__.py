"""Object detection's box machinery: anchors, IoU-based assignment, R-CNN box encoding, box and
SVM losses, RoI pooling and RoI align. IoU and NMS live in ``jdl.metrics`` (``box_iou``,
``nms``); the shapes data set in ``jdl.data.shapes``."""

from jdl.detection.anchors import anchor_shapes, anchors
from jdl.detection.assign import IGNORE, NEGATIVE, POSITIVE, assign, subsample
from jdl.detection.detector import Detections, Detector, as_metric_input
from jdl.detection.boxes import clip_boxes, cxcywh_to_xyxy, decode, encode, xyxy_to_cxcywh
from jdl.detection.losses import box_least_squares, hinge, smooth_l1
from jdl.detection.roi import roi_align, roi_pool
from jdl.metrics import box_iou, nms

__all__ = ["anchor_shapes", "anchors", "assign", "subsample", "POSITIVE", "NEGATIVE", "IGNORE",
           "encode", "decode", "xyxy_to_cxcywh", "cxcywh_to_xyxy", "clip_boxes", "smooth_l1",
           "box_least_squares", "hinge", "roi_pool", "roi_align", "box_iou", "nms",
           "Detector", "Detections", "as_metric_input"]
